//! A pickle reader that accepts plain data only.
//!
//! Reading is two passes. [`parse`] runs the opcodes over the input into a
//! table of nodes, as Python's unpickler would build objects, except that a
//! node is data, never an object: a `str` or `bytes` node is a range of the
//! input, a container holds node numbers, and a memo reference (`BINGET`,
//! `DUP`) is one more number, not a copy. Every node comes from one opcode,
//! so the table grows at most with the input. [`Parsed::decode`] then builds
//! the [`PyValue`] tree from the root. Both passes charge the memory they
//! take to one budget ([`Options::budget`]), the second for every node it
//! builds (at what it costs as the dynamic value it becomes, see
//! [`crate::budget`]), so a memo bomb (a list of ten references to a list
//! of ten references to …) fails at the budget instead of filling memory, and
//! nesting past a depth limit (or a container that holds itself) fails too.
//! A length prefix is checked against the bytes actually left before
//! anything is read, so a `BINUNICODE8` claiming 2⁶² bytes costs nothing.
//!
//! Accepted: `PROTO`, `FRAME`, `STOP`, `NONE`, `NEWTRUE`/`NEWFALSE`,
//! `BININT`/`BININT1`/`BININT2`, `LONG1`/`LONG4` (up to 128 bits),
//! `BINFLOAT`, `SHORT_BINUNICODE`/`BINUNICODE`/`BINUNICODE8`,
//! `SHORT_BINBYTES`/`BINBYTES`/`BINBYTES8`, `BYTEARRAY8`, the tuple, list and
//! dict opcodes, `MARK`, `POP`, `POP_MARK`, `DUP`, and the memo opcodes: what
//! protocols 1 to 5 write for plain data (Python writes protocol 4 or 5).
//!
//! Refused: every opcode that names a global or calls something (`GLOBAL`,
//! `STACK_GLOBAL`, `INST`, `OBJ`, `REDUCE`, `BUILD`, `NEWOBJ`, `NEWOBJ_EX`,
//! `EXT1`/`EXT2`/`EXT4`, `PERSID`, `BINPERSID`), out-of-band buffers, sets,
//! and protocol 0's text opcodes. With [`Options::exceptions`], one shape
//! naming a global is read as data: a class applied to an argument tuple by
//! `REDUCE`, optionally followed by `BUILD` with a dict, as the whole pickle.
//! That is how Python pickles an exception; see [`PyException`].

mod build;
mod machine;

use std::ops::Range;

use self::build::Builder;
use self::machine::Machine;
use super::PyValue;

/// Bounds on what one pickle may make the reader do.
#[derive(Clone, Debug)]
pub struct Options {
    /// How deep containers may nest.
    pub max_depth: usize,
    /// How many memo entries a pickle may make.
    pub max_memo: usize,
    /// The most memory reading may take, in bytes: the nodes, stack and
    /// memo of the first pass, then each value built (its size plus its text
    /// or bytes), memo references every time they are built.
    pub budget: usize,
    /// Whether a pickled exception (a class applied to its arguments) is
    /// accepted as the whole value; for replies from a Python server only.
    pub exceptions: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_depth: 100,
            max_memo: 1 << 20,
            budget: 64 << 20,
            exceptions: false,
        }
    }
}

impl Options {
    /// These options with the budget scaled to an input of `len` bytes:
    /// twice the decode budget of [`crate::budget::for_message`] (64 bytes
    /// per input byte, at least 128 KiB), at most the budget set. Twice,
    /// because reading charges its node table as well as the value: a
    /// list of small ints takes about 120 bytes to read, build and turn
    /// into a dynamic value per 2 bytes of pickle, and still fits.
    pub fn scaled_to(&self, len: usize) -> Options {
        let floor = 2 * crate::budget::MIN;
        Options {
            budget: crate::budget::for_message(len)
                .saturating_mul(2)
                .clamp(floor, self.budget.max(floor)),
            ..self.clone()
        }
    }
}

/// Why a pickle was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// An opcode this reader never runs.
    #[error(
        "refused pickle opcode {name} (0x{code:02x}) at byte {offset}: {why}; \
         only plain data (None, bool, int, float, str, bytes, tuple, list, dict) is accepted"
    )]
    Refused {
        /// The opcode's name in `pickletools`.
        name: &'static str,
        /// The opcode byte.
        code: u8,
        /// Where it is in the input.
        offset: usize,
        /// What it would have done.
        why: &'static str,
    },
    /// The input is not a well-formed pickle.
    #[error("malformed pickle at byte {offset}: {what}")]
    Malformed {
        /// Where reading stopped.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// The pickle is well formed but over one of the [`Options`] bounds.
    #[error("pickle refused: {0}")]
    Limit(String),
    /// Reading the pickle, or the value it builds, would take more memory
    /// than [`Options::budget`].
    #[error("pickle refused: {what} would take more than {limit} bytes of memory")]
    OverBudget {
        /// What would: reading, or the value.
        what: &'static str,
        /// The budget, in bytes.
        limit: usize,
    },
}

/// A pickled exception, read as data: its class and the arguments it was
/// built with. Nothing of it is imported or run.
#[derive(Clone, Debug, PartialEq)]
pub struct PyException {
    /// The class's module (`builtins`, `__main__`, …).
    pub module: String,
    /// The class's name.
    pub name: String,
    /// The arguments (`exc.args`).
    pub args: Vec<PyValue>,
    /// The instance's `__dict__`, when the pickle set it (`BUILD`).
    pub state: Option<PyValue>,
}

impl PyException {
    /// The class as Python prints it: `KeyError`, or `__main__.MyError`.
    pub fn class(&self) -> String {
        match self.module.as_str() {
            "builtins" | "exceptions" => self.name.clone(),
            module => format!("{module}.{}", self.name),
        }
    }

    /// `str(exc)`: the one argument, or the argument tuple.
    pub fn message(&self) -> String {
        match &self.args[..] {
            [] => String::new(),
            [PyValue::Str(s)] => s.clone(),
            [one] => one.to_string(),
            _ => PyValue::Tuple(self.args.clone()).to_string(),
        }
    }
}

/// What a pickle held.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// Plain data.
    Value(PyValue),
    /// A pickled exception (only with [`Options::exceptions`]).
    Exception(PyException),
}

/// Reads plain data; anything naming a global is refused.
pub fn read_value(input: &[u8], options: &Options) -> Result<PyValue, PickleError> {
    let options = Options {
        exceptions: false,
        ..options.clone()
    };
    match parse(input, &options)?.decode()? {
        Decoded::Value(value) => Ok(value),
        // Without `exceptions` the machine makes no exception nodes.
        Decoded::Exception(e) => Err(PickleError::Limit(format!(
            "a pickled {} where plain data was expected",
            e.class()
        ))),
    }
}

/// A node's number in [`Parsed`]'s table.
type Id = usize;

/// What one opcode made: data, a class name, or a pickled exception.
#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(Range<usize>),
    Bytes(Range<usize>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Class {
        module: Range<usize>,
        name: Range<usize>,
    },
    Exception {
        class: Id,
        args: Id,
        state: Option<Id>,
    },
}

/// An entry of the machine's stack.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Mark,
    Node(Id),
}

/// A pickle run into nodes, not yet built into a value.
#[derive(Debug)]
pub struct Parsed<'a> {
    input: &'a [u8],
    nodes: Vec<Node>,
    root: Id,
    options: Options,
    /// The budget reading left for building.
    budget_left: usize,
}

/// Runs the opcodes of `input`; see the [module docs](self).
pub fn parse<'a>(input: &'a [u8], options: &Options) -> Result<Parsed<'a>, PickleError> {
    let (nodes, root, budget_left) = Machine::new(input, options).run()?;
    Ok(Parsed {
        input,
        nodes,
        root,
        options: options.clone(),
        budget_left,
    })
}

impl Parsed<'_> {
    /// When the whole pickle is one `str` or `bytes`, where its content lies
    /// in the input: the payload of a Python peer's frame.
    pub fn span(&self) -> Option<Range<usize>> {
        match &self.nodes[self.root] {
            Node::Str(range) | Node::Bytes(range) => Some(range.clone()),
            _ => None,
        }
    }

    /// Builds the value, within the budget and depth limit.
    pub fn decode(&self) -> Result<Decoded, PickleError> {
        let mut builder = Builder::new(self);
        match &self.nodes[self.root] {
            Node::Exception { class, args, state } => builder.exception(*class, *args, *state),
            _ => builder.build(self.root, 0).map(Decoded::Value),
        }
    }

    fn text(&self, range: &Range<usize>) -> String {
        String::from_utf8_lossy(&self.input[range.clone()]).into_owned()
    }
}
