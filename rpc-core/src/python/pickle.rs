//! A pickle reader that accepts plain data only.
//!
//! Reading is two passes. [`parse`] runs the opcodes over the input into a
//! table of nodes, as Python's unpickler would build objects, except that a
//! node is data, never an object: a `str` or `bytes` node is a range of the
//! input, a container holds node numbers, and a memo reference (`BINGET`,
//! `DUP`) is one more number, not a copy. Every node comes from one opcode,
//! so the table grows at most with the input. [`Parsed::decode`] then builds
//! the [`PyValue`] tree from the root, charging each node it builds to an
//! expansion budget, so a memo bomb (a list of ten references to a list of
//! ten references to …) fails at the budget instead of filling memory, and
//! nesting past a depth limit (or a container that holds itself) fails too.
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

use std::collections::HashMap;
use std::ops::Range;

use super::PyValue;

/// Bounds on what one pickle may make the reader do.
#[derive(Clone, Debug)]
pub struct Options {
    /// How deep containers may nest.
    pub max_depth: usize,
    /// How many memo entries a pickle may make.
    pub max_memo: usize,
    /// The most memory the decoded value may take, counted as the size of
    /// each node built plus its text or bytes; memo references count every
    /// time they are built.
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
    /// These options with the budget scaled to an input of `len` bytes: 64
    /// bytes of value per input byte, at least 1 MiB, at most the budget
    /// set. A small frame then cannot make a server build a large value,
    /// while the densest plain data (a list of small ints takes about 32
    /// bytes of value per 2 bytes of pickle) still fits.
    pub fn scaled_to(&self, len: usize) -> Options {
        Options {
            budget: len
                .saturating_mul(64)
                .clamp(1 << 20, self.budget.max(1 << 20)),
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

/// Reads plain data; anything else is an error.
pub fn read_value(input: &[u8], options: &Options) -> Result<PyValue, PickleError> {
    let options = Options {
        exceptions: false,
        ..options.clone()
    };
    match parse(input, &options)?.decode()? {
        Decoded::Value(value) => Ok(value),
        Decoded::Exception(_) => unreachable_exception(),
    }
}

fn unreachable_exception() -> Result<PyValue, PickleError> {
    Err(PickleError::Limit(
        "an exception where plain data was expected".into(),
    ))
}

type Id = usize;

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
}

/// Runs the opcodes of `input`; see the [module docs](self).
pub fn parse<'a>(input: &'a [u8], options: &Options) -> Result<Parsed<'a>, PickleError> {
    let mut machine = Machine {
        input,
        pos: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        memo: HashMap::new(),
        options,
    };
    let root = machine.run()?;
    Ok(Parsed {
        input,
        nodes: machine.nodes,
        root,
        options: options.clone(),
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
        let mut builder = Builder {
            parsed: self,
            budget: self.options.budget,
            on_path: vec![false; self.nodes.len()],
        };
        match &self.nodes[self.root] {
            Node::Exception { class, args, state } => builder.exception(*class, *args, *state),
            _ => builder.build(self.root, 0).map(Decoded::Value),
        }
    }

    fn text(&self, range: &Range<usize>) -> String {
        String::from_utf8_lossy(&self.input[range.clone()]).into_owned()
    }
}

/// The first pass: the pickle machine, over nodes.
struct Machine<'a, 'o> {
    input: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Slot>,
    memo: HashMap<u64, Id>,
    options: &'o Options,
}

impl Machine<'_, '_> {
    fn run(&mut self) -> Result<Id, PickleError> {
        loop {
            let offset = self.pos;
            let code = self.take(1)?[0];
            if code == b'.' {
                return self.stop();
            }
            self.step(code, offset)?;
        }
    }

    fn stop(&mut self) -> Result<Id, PickleError> {
        if self.pos != self.input.len() {
            let extra = self.input.len() - self.pos;
            return Err(self.malformed(format!("{extra} bytes after STOP")));
        }
        match self.stack[..] {
            [Slot::Node(root)] => Ok(root),
            _ => Err(self.malformed(format!(
                "STOP with {} items on the stack instead of one value",
                self.stack.len()
            ))),
        }
    }

    fn step(&mut self, code: u8, offset: usize) -> Result<(), PickleError> {
        match code {
            0x80 => self.proto(),
            0x95 => self.take(8).map(drop),
            b'N' => self.push(Node::None),
            0x88 => self.push(Node::Bool(true)),
            0x89 => self.push(Node::Bool(false)),
            b'J' => {
                let n = i32::from_le_bytes(self.array()?);
                self.push(Node::Int(n.into()))
            }
            b'K' => {
                let n = self.take(1)?[0];
                self.push(Node::Int(n.into()))
            }
            b'M' => {
                let n = u16::from_le_bytes(self.array()?);
                self.push(Node::Int(n.into()))
            }
            0x8a => {
                let len = self.take(1)?[0];
                self.long(len.into())
            }
            0x8b => {
                let len = self.len32()?;
                self.long(len)
            }
            b'G' => {
                let x = f64::from_be_bytes(self.array()?);
                self.push(Node::Float(x))
            }
            0x8c => self.text_of(1),
            b'X' => self.text_of(4),
            0x8d => self.text_of(8),
            b'C' => self.bytes_of(1),
            b'B' => self.bytes_of(4),
            0x8e | 0x96 => self.bytes_of(8),
            b')' => self.push(Node::Tuple(Vec::new())),
            0x85..=0x87 => {
                let n = usize::from(code - 0x84);
                let items = self.pop_nodes(n)?;
                self.push(Node::Tuple(items))
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items))
            }
            b']' => self.push(Node::List(Vec::new())),
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Node::List(items))
            }
            b'a' => {
                let items = self.pop_nodes(1)?;
                self.extend_list(items)
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_list(items)
            }
            b'}' => self.push(Node::Dict(Vec::new())),
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.push(Node::Dict(pairs))
            }
            b's' => {
                let items = self.pop_nodes(2)?;
                self.extend_dict(items)
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_dict(items)
            }
            b'(' => {
                self.stack.push(Slot::Mark);
                Ok(())
            }
            b'0' => self.stack.pop().map(drop).ok_or_else(|| self.underflow()),
            b'1' => self.pop_mark().map(drop),
            b'2' => {
                let top = self.top()?;
                self.stack.push(Slot::Node(top));
                Ok(())
            }
            0x94 => self.put(self.memo.len() as u64),
            b'q' => {
                let i = self.take(1)?[0];
                self.put(i.into())
            }
            b'r' => {
                let i = u32::from_le_bytes(self.array()?);
                self.put(i.into())
            }
            b'h' => {
                let i = self.take(1)?[0];
                self.get(i.into())
            }
            b'j' => {
                let i = u32::from_le_bytes(self.array()?);
                self.get(i.into())
            }
            b'c' | 0x93 | b'R' | b'b' if self.options.exceptions => self.exception_step(code),
            _ => Err(refusal(code, offset)),
        }
    }

    fn proto(&mut self) -> Result<(), PickleError> {
        let version = self.take(1)?[0];
        if version > 5 {
            return Err(self.malformed(format!("protocol {version} is newer than this reader (5)")));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let left = self.input.len() - self.pos;
        if n > left {
            return Err(self.malformed(format!("needs {n} more bytes but {left} are left")));
        }
        self.pos += n;
        Ok(&self.input[self.pos - n..self.pos])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len32(&mut self) -> Result<usize, PickleError> {
        let n = i32::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| self.malformed(format!("negative length {n}")))
    }

    /// The range of a length-prefixed payload, whose length takes `width` bytes.
    fn payload(&mut self, width: usize) -> Result<Range<usize>, PickleError> {
        let len = match width {
            1 => u64::from(self.take(1)?[0]),
            4 => u64::from(u32::from_le_bytes(self.array()?)),
            _ => u64::from_le_bytes(self.array()?),
        };
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let start = self.pos;
        self.take(len)?;
        Ok(start..self.pos)
    }

    fn text_of(&mut self, width: usize) -> Result<(), PickleError> {
        let range = self.payload(width)?;
        if std::str::from_utf8(&self.input[range.clone()]).is_err() {
            return Err(self.malformed("a str that is not valid UTF-8".into()));
        }
        self.push(Node::Str(range))
    }

    fn bytes_of(&mut self, width: usize) -> Result<(), PickleError> {
        let range = self.payload(width)?;
        self.push(Node::Bytes(range))
    }

    /// A little-endian two's complement integer of `len` bytes.
    fn long(&mut self, len: usize) -> Result<(), PickleError> {
        if len > 16 {
            return Err(PickleError::Limit(format!(
                "an int of {len} bytes is wider than the 128 bits this reader supports"
            )));
        }
        let bytes = self.take(len)?;
        let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
            0xff
        } else {
            0
        };
        let mut wide = [fill; 16];
        wide[..len].copy_from_slice(bytes);
        self.push(Node::Int(i128::from_le_bytes(wide)))
    }

    fn push(&mut self, node: Node) -> Result<(), PickleError> {
        self.nodes.push(node);
        self.stack.push(Slot::Node(self.nodes.len() - 1));
        Ok(())
    }

    fn top(&self) -> Result<Id, PickleError> {
        match self.stack.last() {
            Some(Slot::Node(id)) => Ok(*id),
            Some(Slot::Mark) => Err(self.malformed("a value expected, found MARK".into())),
            None => Err(self.underflow()),
        }
    }

    fn pop_nodes(&mut self, n: usize) -> Result<Vec<Id>, PickleError> {
        let at = self
            .stack
            .len()
            .checked_sub(n)
            .ok_or_else(|| self.underflow())?;
        let items = self.stack.split_off(at);
        items
            .into_iter()
            .map(|slot| match slot {
                Slot::Node(id) => Ok(id),
                Slot::Mark => Err(self.malformed("a value expected, found MARK".into())),
            })
            .collect()
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let mark = self
            .stack
            .iter()
            .rposition(|s| matches!(s, Slot::Mark))
            .ok_or_else(|| self.malformed("no MARK to collect items up to".into()))?;
        let items = self.pop_nodes(self.stack.len() - mark - 1)?;
        self.stack.pop();
        Ok(items)
    }

    fn pairs(&self, items: Vec<Id>) -> Result<Vec<(Id, Id)>, PickleError> {
        if items.len() % 2 != 0 {
            return Err(self.malformed("a dict needs an even number of items".into()));
        }
        Ok(items.chunks(2).map(|kv| (kv[0], kv[1])).collect())
    }

    fn extend_list(&mut self, items: Vec<Id>) -> Result<(), PickleError> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::List(list) => {
                list.extend(items);
                Ok(())
            }
            _ => Err(self.malformed("APPEND to something that is not a list".into())),
        }
    }

    fn extend_dict(&mut self, items: Vec<Id>) -> Result<(), PickleError> {
        let pairs = self.pairs(items)?;
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::Dict(dict) => {
                dict.extend(pairs);
                Ok(())
            }
            _ => Err(self.malformed("SETITEM on something that is not a dict".into())),
        }
    }

    fn put(&mut self, index: u64) -> Result<(), PickleError> {
        let top = self.top()?;
        if self.memo.len() >= self.options.max_memo && !self.memo.contains_key(&index) {
            return Err(PickleError::Limit(format!(
                "more than {} memo entries",
                self.options.max_memo
            )));
        }
        self.memo.insert(index, top);
        Ok(())
    }

    fn get(&mut self, index: u64) -> Result<(), PickleError> {
        let id = *self
            .memo
            .get(&index)
            .ok_or_else(|| self.malformed(format!("memo entry {index} was never set")))?;
        self.stack.push(Slot::Node(id));
        Ok(())
    }

    /// `GLOBAL`, `STACK_GLOBAL`, `REDUCE` and `BUILD`, read as the parts of a
    /// pickled exception; [`Builder`] accepts the result only as the root.
    fn exception_step(&mut self, code: u8) -> Result<(), PickleError> {
        match code {
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push(Node::Class { module, name })
            }
            0x93 => {
                let parts = self.pop_nodes(2)?;
                match (&self.nodes[parts[0]], &self.nodes[parts[1]]) {
                    (Node::Str(module), Node::Str(name)) => {
                        let (module, name) = (module.clone(), name.clone());
                        self.push(Node::Class { module, name })
                    }
                    _ => Err(self.malformed("STACK_GLOBAL needs two str".into())),
                }
            }
            b'R' => {
                let parts = self.pop_nodes(2)?;
                match (&self.nodes[parts[0]], &self.nodes[parts[1]]) {
                    (Node::Class { .. }, Node::Tuple(_)) => self.push(Node::Exception {
                        class: parts[0],
                        args: parts[1],
                        state: None,
                    }),
                    _ => Err(refusal(code, self.pos - 1)),
                }
            }
            _ => {
                let state = self.pop_nodes(1)?[0];
                let target = self.top()?;
                let is_dict = matches!(self.nodes[state], Node::Dict(_));
                match &mut self.nodes[target] {
                    Node::Exception {
                        state: s @ None, ..
                    } if is_dict => {
                        *s = Some(state);
                        Ok(())
                    }
                    _ => Err(refusal(code, self.pos - 1)),
                }
            }
        }
    }

    /// A protocol 0 text line, without its newline.
    fn line(&mut self) -> Result<Range<usize>, PickleError> {
        let rest = &self.input[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.malformed("a line without its newline".into()))?;
        let start = self.pos;
        self.pos += len + 1;
        Ok(start..start + len)
    }

    fn underflow(&self) -> PickleError {
        self.malformed("an opcode needs more values than the stack holds".into())
    }

    fn malformed(&self, what: String) -> PickleError {
        PickleError::Malformed {
            offset: self.pos,
            what,
        }
    }
}

/// The error for an opcode the reader does not run.
fn refusal(code: u8, offset: usize) -> PickleError {
    let (name, why) = match code {
        b'c' => (
            "GLOBAL",
            "it names a Python global (how a pickle imports code)",
        ),
        0x93 => (
            "STACK_GLOBAL",
            "it names a Python global (how a pickle imports code)",
        ),
        b'i' => ("INST", "it names a class and calls it"),
        b'o' => ("OBJ", "it calls a class"),
        b'R' => ("REDUCE", "it calls an object (how a pickle runs code)"),
        b'b' => ("BUILD", "it sets an object's state"),
        0x81 => ("NEWOBJ", "it calls a class"),
        0x92 => ("NEWOBJ_EX", "it calls a class"),
        0x82..=0x84 => ("EXT", "it names a registered global"),
        b'P' | b'Q' => ("PERSID", "it asks for a persistent object"),
        0x97 | 0x98 => ("NEXT_BUFFER", "it needs out-of-band buffers"),
        0x8f..=0x91 => ("EMPTY_SET", "sets are not supported; send a list"),
        b'I' | b'L' | b'F' | b'S' | b'V' | b'T' | b'U' | b'p' | b'g' => (
            "a protocol 0 text opcode",
            "text pickles are not supported; pickle with protocol 2 or newer",
        ),
        _ => ("an unknown opcode", "it is not a pickle opcode"),
    };
    PickleError::Refused {
        name,
        code,
        offset,
        why,
    }
}

/// The second pass: nodes into a tree, within the budget.
struct Builder<'p> {
    parsed: &'p Parsed<'p>,
    budget: usize,
    on_path: Vec<bool>,
}

impl Builder<'_> {
    fn charge(&mut self, bytes: usize) -> Result<(), PickleError> {
        let cost = bytes.saturating_add(std::mem::size_of::<PyValue>());
        self.budget = self.budget.checked_sub(cost).ok_or_else(|| {
            PickleError::Limit(format!(
                "the value would take more than {} bytes (memo references \
                 expand each time they are used)",
                self.parsed.options.budget
            ))
        })?;
        Ok(())
    }

    fn build(&mut self, id: Id, depth: usize) -> Result<PyValue, PickleError> {
        let parsed = self.parsed;
        let input = parsed.input;
        let node = &parsed.nodes[id];
        match node {
            Node::Str(r) | Node::Bytes(r) => self.charge(r.len())?,
            _ => self.charge(0)?,
        }
        let value = match node {
            Node::None => PyValue::None,
            Node::Bool(b) => PyValue::Bool(*b),
            Node::Int(i) => PyValue::Int(*i),
            Node::Float(x) => PyValue::Float(*x),
            Node::Str(r) => PyValue::Str(parsed.text(r)),
            Node::Bytes(r) => PyValue::Bytes(input[r.clone()].to_vec()),
            Node::Tuple(items) => PyValue::Tuple(self.children(id, items, depth)?),
            Node::List(items) => PyValue::List(self.children(id, items, depth)?),
            Node::Dict(pairs) => {
                let flat: Vec<Id> = pairs.iter().flat_map(|&(k, v)| [k, v]).collect();
                let mut flat = self.children(id, &flat, depth)?.into_iter();
                let mut entries = Vec::with_capacity(pairs.len());
                while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                    entries.push((k, v));
                }
                PyValue::Dict(entries)
            }
            Node::Class { .. } | Node::Exception { .. } => {
                return Err(PickleError::Limit(
                    "a global inside a value; only a whole pickled exception names one".into(),
                ));
            }
        };
        Ok(value)
    }

    fn children(
        &mut self,
        id: Id,
        items: &[Id],
        depth: usize,
    ) -> Result<Vec<PyValue>, PickleError> {
        if depth >= self.parsed.options.max_depth {
            return Err(PickleError::Limit(format!(
                "containers nested deeper than {} levels",
                self.parsed.options.max_depth
            )));
        }
        if std::mem::replace(&mut self.on_path[id], true) {
            return Err(PickleError::Limit(
                "a container that holds itself has no plain-data form".into(),
            ));
        }
        let built = items
            .iter()
            .map(|&item| self.build(item, depth + 1))
            .collect();
        self.on_path[id] = false;
        built
    }

    fn exception(
        &mut self,
        class: Id,
        args: Id,
        state: Option<Id>,
    ) -> Result<Decoded, PickleError> {
        let Node::Class { module, name } = &self.parsed.nodes[class] else {
            return Err(PickleError::Limit("REDUCE of something not a class".into()));
        };
        let (module, name) = (self.parsed.text(module), self.parsed.text(name));
        let dotted = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|part| {
                    part.chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_')
                        && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                })
        };
        if !dotted(&module) || !dotted(&name) {
            return Err(PickleError::Limit(format!(
                "`{module}.{name}` is not a class name"
            )));
        }
        let PyValue::Tuple(args) = self.build(args, 0)? else {
            return Err(PickleError::Limit(
                "exception arguments that are not a tuple".into(),
            ));
        };
        let state = state.map(|s| self.build(s, 0)).transpose()?;
        Ok(Decoded::Exception(PyException {
            module,
            name,
            args,
            state,
        }))
    }
}
