//! The second pass: nodes into a [`PyValue`] tree, charging every node
//! built (memo references each time) to the budget, within the depth limit.
//! A node is charged for what it finally costs: itself, and the dynamic
//! value it becomes ([`crate::budget::cost`]), an object's B-tree included.

use super::{Decoded, Id, Node, Parsed, PickleError, PyException};
use crate::budget::cost;
use crate::python::PyValue;

/// Builds values from a [`Parsed`] table.
pub(super) struct Builder<'p> {
    parsed: &'p Parsed<'p>,
    /// What is left of the budget.
    budget: usize,
    /// The containers being built, to catch one that holds itself.
    on_path: Vec<bool>,
}

impl<'p> Builder<'p> {
    pub(super) fn new(parsed: &'p Parsed<'p>) -> Self {
        Builder {
            parsed,
            budget: parsed.budget_left,
            on_path: vec![false; parsed.nodes.len()],
        }
    }

    /// Charges one node built, and `heap` more bytes it holds: the node
    /// twice, as the [`PyValue`] built here and as the dynamic value
    /// ([`crate::Value`]) it becomes, both alive at once while a call's
    /// arguments are read.
    fn charge(&mut self, heap: usize) -> Result<(), PickleError> {
        let cost = heap
            .saturating_add(std::mem::size_of::<PyValue>())
            .saturating_add(cost::NODE);
        self.budget = self
            .budget
            .checked_sub(cost)
            .ok_or(PickleError::OverBudget {
                what: "the value (memo references expand each time they are used)",
                limit: self.parsed.options.budget,
            })?;
        Ok(())
    }

    pub(super) fn build(&mut self, id: Id, depth: usize) -> Result<PyValue, PickleError> {
        let parsed = self.parsed;
        let input = parsed.input;
        let node = &parsed.nodes[id];
        match node {
            Node::Str(r) | Node::Bytes(r) => self.charge(cost::heap(r.len()))?,
            // Each entry as the object it becomes (a key and a value are
            // two nodes, charged when built).
            Node::Dict(pairs) => {
                let entries = (0..pairs.len())
                    .map(cost::entry)
                    .fold(0, usize::saturating_add);
                self.charge(entries)?;
            }
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
        let mut built = Vec::with_capacity(items.len());
        for &item in items {
            built.push(self.build(item, depth + 1)?);
        }
        self.on_path[id] = false;
        Ok(built)
    }

    pub(super) fn exception(
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
