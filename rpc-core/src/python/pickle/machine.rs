//! The first pass: the pickle machine, over nodes. Each opcode either adds
//! at most one node or moves node numbers between the stack, the memo and
//! containers, so the work is linear in the input; the memory it takes is
//! charged to the budget as it grows.

use std::collections::HashMap;
use std::ops::Range;

use super::{Id, Node, Options, PickleError, Slot};

/// The pickle machine, over nodes.
pub(super) struct Machine<'a, 'o> {
    input: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Slot>,
    memo: HashMap<u64, Id>,
    options: &'o Options,
    /// What is left of the budget.
    budget: usize,
}

/// Roughly what one memo entry costs in the map.
const MEMO_ENTRY: usize = 32;

impl<'a, 'o> Machine<'a, 'o> {
    pub(super) fn new(input: &'a [u8], options: &'o Options) -> Self {
        Machine {
            input,
            pos: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            memo: HashMap::new(),
            options,
            budget: options.budget,
        }
    }

    /// Runs to `STOP`: the nodes, which one is the value, and what is left
    /// of the budget to build it.
    pub(super) fn run(mut self) -> Result<(Vec<Node>, Id, usize), PickleError> {
        loop {
            let offset = self.pos;
            let code = self.take(1)?[0];
            if code == b'.' {
                let root = self.stop()?;
                return Ok((self.nodes, root, self.budget));
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
            b'(' => self.push_slot(Slot::Mark),
            b'0' => self.stack.pop().map(drop).ok_or_else(|| self.underflow()),
            b'1' => self.pop_mark().map(drop),
            b'2' => {
                let top = self.top()?;
                self.push_slot(Slot::Node(top))
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
        self.charge(std::mem::size_of::<Node>())?;
        self.nodes.push(node);
        self.push_slot(Slot::Node(self.nodes.len() - 1))
    }

    fn push_slot(&mut self, slot: Slot) -> Result<(), PickleError> {
        self.charge(std::mem::size_of::<Slot>())?;
        self.stack.push(slot);
        Ok(())
    }

    /// Counts `bytes` of memory against the budget.
    fn charge(&mut self, bytes: usize) -> Result<(), PickleError> {
        self.budget = self
            .budget
            .checked_sub(bytes)
            .ok_or(PickleError::OverBudget {
                what: "reading the pickle",
                limit: self.options.budget,
            })?;
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
        // The numbers move into a container (or a node's parts), and their
        // stack slots are free again.
        self.charge(n * std::mem::size_of::<Id>())?;
        self.budget = self
            .budget
            .saturating_add(n * std::mem::size_of::<Slot>())
            .min(self.options.budget);
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
        self.charge(MEMO_ENTRY)?;
        self.memo.insert(index, top);
        Ok(())
    }

    fn get(&mut self, index: u64) -> Result<(), PickleError> {
        let id = *self
            .memo
            .get(&index)
            .ok_or_else(|| self.malformed(format!("memo entry {index} was never set")))?;
        self.push_slot(Slot::Node(id))
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
