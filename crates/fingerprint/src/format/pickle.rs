//! A restricted pickle interpreter for PyTorch state dicts: it builds data, never runs code.
//!
//! `torch.save` pickles a (nested) dict of tensors. Each tensor is a call to
//! `torch._utils._rebuild_tensor_v2` on a *persistent id* naming a storage record of the zip
//! archive. This interpreter understands exactly the opcodes such a pickle uses (protocols 2 to
//! 5) and resolves `GLOBAL`/`STACK_GLOBAL` against a fixed allowlist: `collections.OrderedDict`,
//! the torch tensor and parameter rebuild functions, and the `torch.*Storage` types. Any other
//! global, any other opcode (`INST`, `OBJ`, `NEWOBJ`, `EXT*`, text `PERSID`, ...), a `REDUCE`
//! on anything but an allowlisted callable, or a `BUILD` on anything but a dict is refused
//! with an error naming the file, the opcode or global and its byte position. Nothing found in
//! the pickle is ever imported, called or evaluated: "calling" an allowlisted function only
//! records the tensor description it would rebuild.
//!
//! Caps bound the work on hostile input: the stack, the mark depth, the memo, every string,
//! the number of containers and the number of tensors.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use crate::error::{Error, Result};

/// Most values on the pickle stack at once.
pub const MAX_STACK: usize = 1 << 20;
/// Deepest nesting of `MARK`s.
pub const MAX_MARKS: usize = 4096;
/// Most memo entries.
pub const MAX_MEMO: usize = 1 << 22;
/// Longest string (tensor names and storage keys are short).
pub const MAX_STRING: usize = 1 << 20;
/// Most lists and dicts one pickle may create.
pub const MAX_CONTAINERS: usize = 1 << 22;
/// Most tensors one pickle may describe.
pub const MAX_TENSORS: usize = 1 << 20;
/// Deepest nesting of dicts when collecting tensors.
pub const MAX_DEPTH: usize = 64;

/// Element type of a torch storage class (`torch.FloatStorage`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    /// `FloatStorage`.
    F32,
    /// `DoubleStorage`.
    F64,
    /// `HalfStorage`.
    F16,
    /// `BFloat16Storage`.
    BF16,
    /// `LongStorage`.
    I64,
    /// `IntStorage`.
    I32,
    /// `ShortStorage`.
    I16,
    /// `CharStorage`.
    I8,
    /// `ByteStorage`.
    U8,
    /// `BoolStorage`.
    Bool,
    /// `ComplexFloatStorage`.
    C64,
    /// `ComplexDoubleStorage`.
    C128,
}

impl StorageKind {
    fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            "ComplexFloatStorage" => Self::C64,
            "ComplexDoubleStorage" => Self::C128,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Self::F64 | Self::I64 | Self::C64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
            Self::C128 => 16,
        }
    }

    /// The name torch gives the element type.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F64 => "F64",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
            Self::I64 => "I64",
            Self::I32 => "I32",
            Self::I16 => "I16",
            Self::I8 => "I8",
            Self::U8 => "U8",
            Self::Bool => "BOOL",
            Self::C64 => "C64",
            Self::C128 => "C128",
        }
    }
}

/// A storage record the pickle refers to by persistent id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRef {
    /// Record key: the data lives in `<prefix>/data/<key>`.
    pub key: String,
    /// Element type.
    pub kind: StorageKind,
    /// Elements in the storage.
    pub numel: u64,
}

/// A tensor as `_rebuild_tensor_v2` would rebuild it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Index into [`StateDict::storages`].
    pub storage: usize,
    /// Offset into the storage, in elements.
    pub offset: u64,
    /// Shape.
    pub size: Vec<u64>,
    /// Strides, in elements.
    pub stride: Vec<u64>,
}

/// The tensors a state-dict pickle describes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict {
    /// Storages, in order of first reference.
    pub storages: Vec<StorageRef>,
    /// `(name, tensor)` in dict order; nested dicts give dotted names.
    pub tensors: Vec<(String, TensorSpec)>,
}

/// Callables and classes the allowlist resolves globals to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    Storage(StorageKind),
}

fn resolve_global(module: &str, name: &str) -> Option<Global> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch", class) => Global::Storage(StorageKind::from_class(class)?),
        _ => return None,
    })
}

#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// A float (its value is never needed).
    Float,
    Str(Rc<str>),
    Tuple(Rc<[Value]>),
    List(usize),
    Dict(usize),
    Global(Global),
    Storage(usize),
    Tensor(usize),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float => "a float",
            Value::Str(_) => "a string",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a class or function",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// Dict keys: strings and ints are compared; anything else is kept without deduplication.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Str(Rc<str>),
    Int(i64),
    Unique(usize),
}

#[derive(Default)]
struct Dict {
    items: Vec<(Value, Value)>,
    index: HashMap<Key, usize>,
}

enum Container {
    List(Vec<Value>),
    Dict(Dict),
}

struct Machine<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
    /// Position of the opcode being executed (for messages).
    op_at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    containers: Vec<Container>,
    storages: Vec<StorageRef>,
    storage_index: HashMap<String, usize>,
    tensors: Vec<TensorSpec>,
    unique_keys: usize,
}

/// Run the pickle `data` (the record `what` of the checkpoint `path`) and collect its tensors.
pub fn load_state_dict(path: &Path, what: &str, data: &[u8]) -> Result<StateDict> {
    let mut m = Machine {
        path,
        data,
        pos: 0,
        op_at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        containers: Vec::new(),
        storages: Vec::new(),
        storage_index: HashMap::new(),
        tensors: Vec::new(),
        unique_keys: 0,
    };
    let root = m.run(what)?;
    let mut out = StateDict::default();
    match root {
        Value::Dict(_) => m.collect(&root, "", 0, &mut out.tensors, what)?,
        other => {
            return Err(Error::header(
                path,
                format!(
                    "{what}: the pickle holds {}, not a dict of tensors",
                    other.kind()
                ),
            ))
        }
    }
    out.storages = m.storages;
    Ok(out)
}

impl Machine<'_> {
    fn fail(&self, what: &str, reason: impl std::fmt::Display) -> Error {
        Error::header(
            self.path,
            format!("{what}: pickle byte {}: {reason}", self.op_at),
        )
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(e) => {
                let s = &self.data[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => Err(Error::Truncated {
                path: self.path.to_path_buf(),
                what: format!(
                    "{what}: the pickle operand at byte {} ({n} bytes)",
                    self.pos
                ),
                needed: self.pos as u64 + n as u64,
                actual: self.data.len() as u64,
            }),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, len: u64, what: &str) -> Result<Rc<str>> {
        if len > MAX_STRING as u64 {
            return Err(self.fail(
                what,
                format!("string of {len} bytes exceeds the {MAX_STRING}-byte cap"),
            ));
        }
        let bytes = self.take(len as usize, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Rc::from(s)),
            Err(_) => Err(self.fail(what, "string is not valid UTF-8")),
        }
    }

    /// A newline-terminated line (GLOBAL operands).
    fn line(&mut self, what: &str) -> Result<String> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let limit = rest.len().min(MAX_STRING);
        let n = rest[..limit]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.fail(what, "GLOBAL operand has no terminating newline"))?;
        let line = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(line)
    }

    fn push(&mut self, v: Value, what: &str) -> Result<()> {
        if self.stack.len() >= MAX_STACK {
            return Err(self.fail(what, format!("stack exceeds {MAX_STACK} values")));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self, what: &str) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.fail(what, "stack underflow"));
        }
        Ok(self.stack.pop().unwrap_or(Value::None))
    }

    fn top(&mut self, what: &str) -> Result<&mut Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.fail(what, "stack underflow"));
        }
        let n = self.stack.len();
        Ok(&mut self.stack[n - 1])
    }

    fn pop_mark(&mut self, what: &str) -> Result<Vec<Value>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.fail(what, "no MARK to pop to"))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn new_container(&mut self, c: Container, what: &str) -> Result<usize> {
        if self.containers.len() >= MAX_CONTAINERS {
            return Err(self.fail(what, format!("more than {MAX_CONTAINERS} lists and dicts")));
        }
        self.containers.push(c);
        Ok(self.containers.len() - 1)
    }

    fn memo_put(&mut self, index: u32, what: &str) -> Result<()> {
        let v = self.top(what)?.clone();
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&index) {
            return Err(self.fail(what, format!("memo exceeds {MAX_MEMO} entries")));
        }
        self.memo.insert(index, v);
        Ok(())
    }

    fn memo_get(&mut self, index: u32, what: &str) -> Result<()> {
        let v = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| self.fail(what, format!("memo entry {index} was never stored")))?;
        self.push(v, what)
    }

    fn key(&mut self, k: &Value) -> Key {
        match k {
            Value::Str(s) => Key::Str(s.clone()),
            Value::Int(i) => Key::Int(*i),
            _ => {
                self.unique_keys += 1;
                Key::Unique(self.unique_keys)
            }
        }
    }

    fn set_items(&mut self, target: &Value, pairs: Vec<Value>, what: &str) -> Result<()> {
        let Value::Dict(id) = *target else {
            return Err(self.fail(what, format!("SETITEM(S) on {}, not a dict", target.kind())));
        };
        if pairs.len() % 2 != 0 {
            return Err(self.fail(what, "SETITEMS with an odd number of values"));
        }
        let mut it = pairs.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let key = self.key(&k);
            let Some(Container::Dict(d)) = self.containers.get_mut(id) else {
                return Err(self.fail(what, "dict reference is invalid"));
            };
            match d.index.get(&key) {
                Some(&i) => d.items[i] = (k, v),
                None => {
                    d.index.insert(key, d.items.len());
                    d.items.push((k, v));
                }
            }
        }
        Ok(())
    }

    fn append(&mut self, target: &Value, items: Vec<Value>, what: &str) -> Result<()> {
        let id = match *target {
            Value::List(id) => id,
            _ => return Err(self.fail(what, format!("APPEND(S) on {}, not a list", target.kind()))),
        };
        match self.containers.get_mut(id) {
            Some(Container::List(l)) => {
                l.extend(items);
                Ok(())
            }
            _ => Err(self.fail(what, "list reference is invalid")),
        }
    }

    fn run(&mut self, what: &str) -> Result<Value> {
        loop {
            self.op_at = self.pos;
            let op = self.u8(what)?;
            match op {
                // PROTO
                0x80 => {
                    let v = self.u8(what)?;
                    if !(2..=5).contains(&v) {
                        return Err(self.fail(what, format!("pickle protocol {v} is not 2 to 5")));
                    }
                }
                // FRAME: a length hint only.
                0x95 => {
                    self.take(8, what)?;
                }
                b'.' => {
                    // STOP
                    let v = self.pop(what)?;
                    return Ok(v);
                }
                b'(' => {
                    if self.marks.len() >= MAX_MARKS {
                        return Err(self.fail(what, format!("MARKs nest deeper than {MAX_MARKS}")));
                    }
                    self.marks.push(self.stack.len());
                }
                b'}' => {
                    let id = self.new_container(Container::Dict(Dict::default()), what)?;
                    self.push(Value::Dict(id), what)?;
                }
                b']' => {
                    let id = self.new_container(Container::List(Vec::new()), what)?;
                    self.push(Value::List(id), what)?;
                }
                b')' => self.push(Value::Tuple(Rc::from(Vec::new())), what)?,
                b'N' => self.push(Value::None, what)?,
                0x88 => self.push(Value::Bool(true), what)?,
                0x89 => self.push(Value::Bool(false), what)?,
                b'J' => {
                    let v = self.u32(what)? as i32;
                    self.push(Value::Int(v.into()), what)?;
                }
                b'K' => {
                    let v = self.u8(what)?;
                    self.push(Value::Int(v.into()), what)?;
                }
                b'M' => {
                    let v = self.u16(what)?;
                    self.push(Value::Int(v.into()), what)?;
                }
                // LONG1: little-endian two's complement of n bytes.
                0x8a => {
                    let n = self.u8(what)? as usize;
                    if n > 8 {
                        return Err(self.fail(what, format!("LONG1 of {n} bytes exceeds 64 bits")));
                    }
                    let b = self.take(n, what)?;
                    let mut buf = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xFF; 8]
                    } else {
                        [0; 8]
                    };
                    buf[..n].copy_from_slice(b);
                    self.push(Value::Int(i64::from_le_bytes(buf)), what)?;
                }
                b'G' => {
                    self.take(8, what)?;
                    self.push(Value::Float, what)?;
                }
                b'X' => {
                    let n = self.u32(what)?;
                    let s = self.string(n.into(), what)?;
                    self.push(Value::Str(s), what)?;
                }
                0x8c => {
                    let n = self.u8(what)?;
                    let s = self.string(n.into(), what)?;
                    self.push(Value::Str(s), what)?;
                }
                0x8d => {
                    let b = self.take(8, what)?;
                    let n = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    let s = self.string(n, what)?;
                    self.push(Value::Str(s), what)?;
                }
                b't' => {
                    let items = self.pop_mark(what)?;
                    self.push(Value::Tuple(Rc::from(items)), what)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(what)?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(Rc::from(items)), what)?;
                }
                b'q' => {
                    let i = self.u8(what)?;
                    self.memo_put(i.into(), what)?;
                }
                b'r' => {
                    let i = self.u32(what)?;
                    self.memo_put(i, what)?;
                }
                // MEMOIZE: the next free index.
                0x94 => {
                    let i = u32::try_from(self.memo.len()).unwrap_or(u32::MAX);
                    self.memo_put(i, what)?;
                }
                b'h' => {
                    let i = self.u8(what)?;
                    self.memo_get(i.into(), what)?;
                }
                b'j' => {
                    let i = self.u32(what)?;
                    self.memo_get(i, what)?;
                }
                b's' => {
                    let v = self.pop(what)?;
                    let k = self.pop(what)?;
                    let target = self.top(what)?.clone();
                    self.set_items(&target, vec![k, v], what)?;
                }
                b'u' => {
                    let items = self.pop_mark(what)?;
                    let target = self.top(what)?.clone();
                    self.set_items(&target, items, what)?;
                }
                b'a' => {
                    let v = self.pop(what)?;
                    let target = self.top(what)?.clone();
                    self.append(&target, vec![v], what)?;
                }
                b'e' => {
                    let items = self.pop_mark(what)?;
                    let target = self.top(what)?.clone();
                    self.append(&target, items, what)?;
                }
                b'c' => {
                    let module = self.line(what)?;
                    let name = self.line(what)?;
                    let g = self.global(&module, &name, what)?;
                    self.push(Value::Global(g), what)?;
                }
                0x93 => {
                    let name = self.pop(what)?;
                    let module = self.pop(what)?;
                    let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                        return Err(self.fail(what, "STACK_GLOBAL operands are not strings"));
                    };
                    let g = self.global(module, name, what)?;
                    self.push(Value::Global(g), what)?;
                }
                b'Q' => {
                    let pid = self.pop(what)?;
                    let v = self.persistent_load(&pid, what)?;
                    self.push(v, what)?;
                }
                b'R' => {
                    let args = self.pop(what)?;
                    let callable = self.pop(what)?;
                    let v = self.reduce(&callable, &args, what)?;
                    self.push(v, what)?;
                }
                b'b' => {
                    let state = self.pop(what)?;
                    let target = self.top(what)?.clone();
                    match (&target, &state) {
                        // OrderedDict state (`_metadata` of a state dict): not needed.
                        (Value::Dict(_), Value::Dict(_) | Value::None | Value::Tuple(_)) => {}
                        _ => {
                            return Err(self.fail(
                                what,
                                format!(
                                "BUILD on {} with {} is not allowed (only dict state on a dict)",
                                target.kind(),
                                state.kind()
                            ),
                            ))
                        }
                    }
                }
                other => {
                    return Err(self.fail(
                        what,
                        format!(
                            "opcode {} is not allowed in a state dict pickle",
                            opcode_name(other)
                        ),
                    ))
                }
            }
        }
    }

    fn global(&self, module: &str, name: &str, what: &str) -> Result<Global> {
        resolve_global(module, name).ok_or_else(|| {
            self.fail(
                what,
                format!(
                    "global {module}.{name} is not allowed (only collections.OrderedDict, torch._utils rebuild functions and torch storage types); nothing was executed"
                ),
            )
        })
    }

    fn int(&self, v: &Value, field: &str, what: &str) -> Result<u64> {
        match v {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            Value::Bool(b) => Ok(*b as u64),
            other => Err(self.fail(
                what,
                format!("{field} is {}, not a non-negative int", other.kind()),
            )),
        }
    }

    fn ints(&self, v: &Value, field: &str, what: &str) -> Result<Vec<u64>> {
        match v {
            Value::Tuple(items) => items.iter().map(|x| self.int(x, field, what)).collect(),
            other => Err(self.fail(what, format!("{field} is {}, not a tuple", other.kind()))),
        }
    }

    fn persistent_load(&mut self, pid: &Value, what: &str) -> Result<Value> {
        let bad = |m: &Self| {
            m.fail(
                what,
                "persistent id is not ('storage', type, key, location, numel)",
            )
        };
        let Value::Tuple(t) = pid else {
            return Err(bad(self));
        };
        let [Value::Str(tag), Value::Global(Global::Storage(kind)), Value::Str(key), _location, numel] =
            &t[..]
        else {
            return Err(bad(self));
        };
        if &**tag != "storage" {
            return Err(bad(self));
        }
        let numel = self.int(numel, "storage numel", what)?;
        if let Some(&i) = self.storage_index.get(&**key) {
            let s = &self.storages[i];
            if s.kind != *kind || s.numel != numel {
                return Err(self.fail(
                    what,
                    format!("storage {key} is referenced with two different types or sizes"),
                ));
            }
            return Ok(Value::Storage(i));
        }
        if self.storages.len() >= MAX_TENSORS {
            return Err(self.fail(what, format!("more than {MAX_TENSORS} storages")));
        }
        self.storage_index
            .insert(key.to_string(), self.storages.len());
        self.storages.push(StorageRef {
            key: key.to_string(),
            kind: *kind,
            numel,
        });
        Ok(Value::Storage(self.storages.len() - 1))
    }

    fn reduce(&mut self, callable: &Value, args: &Value, what: &str) -> Result<Value> {
        let Value::Global(g) = callable else {
            return Err(self.fail(
                what,
                format!("REDUCE on {}, not an allowlisted callable", callable.kind()),
            ));
        };
        let Value::Tuple(args) = args else {
            return Err(self.fail(what, "REDUCE arguments are not a tuple"));
        };
        match g {
            Global::OrderedDict if args.is_empty() => {
                let id = self.new_container(Container::Dict(Dict::default()), what)?;
                Ok(Value::Dict(id))
            }
            Global::RebuildTensor | Global::RebuildTensorV2 if args.len() >= 4 => {
                let Value::Storage(storage) = args[0] else {
                    return Err(self.fail(
                        what,
                        format!("tensor storage is {}, not a storage", args[0].kind()),
                    ));
                };
                let offset = self.int(&args[1], "storage offset", what)?;
                let size = self.ints(&args[2], "tensor size", what)?;
                let stride = self.ints(&args[3], "tensor stride", what)?;
                if size.len() != stride.len() {
                    return Err(self.fail(
                        what,
                        format!("size {size:?} and stride {stride:?} differ in rank"),
                    ));
                }
                if self.tensors.len() >= MAX_TENSORS {
                    return Err(self.fail(what, format!("more than {MAX_TENSORS} tensors")));
                }
                self.tensors.push(TensorSpec {
                    storage,
                    offset,
                    size,
                    stride,
                });
                Ok(Value::Tensor(self.tensors.len() - 1))
            }
            Global::RebuildParameter | Global::RebuildParameterWithState
                if !args.is_empty() && matches!(args[0], Value::Tensor(_)) =>
            {
                Ok(args[0].clone())
            }
            g => Err(self.fail(
                what,
                format!(
                    "REDUCE on {g:?} with {} arguments is not allowed",
                    args.len()
                ),
            )),
        }
    }

    /// Walk the root dict: tensors under dotted names, nested dicts recursively, the rest
    /// (ints, strings, lists: epochs, configs, optimizer scalars) ignored.
    fn collect(
        &self,
        v: &Value,
        prefix: &str,
        depth: usize,
        out: &mut Vec<(String, TensorSpec)>,
        what: &str,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.fail(what, format!("dicts nest deeper than {MAX_DEPTH}")));
        }
        let Value::Dict(id) = v else { return Ok(()) };
        let Some(Container::Dict(d)) = self.containers.get(*id) else {
            return Ok(());
        };
        for (k, v) in &d.items {
            let name = match k {
                Value::Str(s) => s.to_string(),
                Value::Int(i) => i.to_string(),
                _ => continue,
            };
            let full = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            match v {
                Value::Tensor(t) => out.push((full, self.tensors[*t].clone())),
                Value::Dict(_) => self.collect(v, &full, depth + 1, out, what)?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// The pickle name of an opcode byte (for refusals).
fn opcode_name(op: u8) -> String {
    let name = match op {
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        b'P' => "PERSID",
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'l' => "LIST",
        b'd' => "DICT",
        b'g' => "GET",
        b'p' => "PUT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        0x8b => "LONG4",
        _ => return format!("0x{op:02x}"),
    };
    format!("{name} (0x{op:02x})")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A state dict entry for [`Pickle::state_dict`]: a name and what pushes its value.
    pub(crate) type Item<'a> = (&'a str, &'a dyn Fn(&mut Pickle));

    /// A tiny pickle writer for tests: protocol 2, the opcodes torch.save uses.
    #[derive(Default)]
    pub(crate) struct Pickle(pub Vec<u8>);

    impl Pickle {
        pub fn new() -> Self {
            Pickle(vec![0x80, 2])
        }
        pub fn op(&mut self, b: u8) -> &mut Self {
            self.0.push(b);
            self
        }
        pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
            self.0.push(b'c');
            self.0.extend(format!("{module}\n{name}\n").as_bytes());
            self
        }
        pub fn str(&mut self, s: &str) -> &mut Self {
            self.0.push(b'X');
            self.0.extend((s.len() as u32).to_le_bytes());
            self.0.extend(s.as_bytes());
            self
        }
        pub fn int(&mut self, v: u32) -> &mut Self {
            self.0.push(b'J');
            self.0.extend(v.to_le_bytes());
            self
        }
        pub fn ints(&mut self, v: &[u64]) -> &mut Self {
            self.op(b'(');
            for &x in v {
                self.int(x as u32);
            }
            self.op(b't')
        }
        /// `_rebuild_tensor_v2(persistent(('storage', kind, key, 'cpu', numel)), offset, size,
        /// stride, False, OrderedDict())`, leaving the tensor on the stack.
        pub fn tensor(
            &mut self,
            kind: &str,
            key: &str,
            numel: u64,
            offset: u64,
            size: &[u64],
            stride: &[u64],
        ) -> &mut Self {
            self.global("torch._utils", "_rebuild_tensor_v2").op(b'(');
            self.op(b'(')
                .str("storage")
                .global("torch", kind)
                .str(key)
                .str("cpu")
                .int(numel as u32)
                .op(b't')
                .op(b'Q');
            self.int(offset as u32).ints(size).ints(stride).op(0x89);
            self.global("collections", "OrderedDict").op(b')').op(b'R');
            self.op(b't').op(b'R')
        }
        /// An OrderedDict of `(name, tensor)` (each pushed by the closure), then STOP.
        pub fn state_dict(&mut self, items: &[Item<'_>]) -> Vec<u8> {
            self.global("collections", "OrderedDict")
                .op(b')')
                .op(b'R')
                .op(b'(');
            for (name, f) in items {
                self.str(name);
                f(self);
            }
            self.op(b'u').op(b'.');
            self.0.clone()
        }
    }

    fn load(data: &[u8]) -> Result<StateDict> {
        load_state_dict(Path::new("ckpt.bin"), "archive/data.pkl", data)
    }

    #[test]
    fn reads_a_state_dict() {
        let data = Pickle::new().state_dict(&[
            ("a.weight", &|p: &mut Pickle| {
                p.tensor("FloatStorage", "0", 6, 0, &[2, 3], &[3, 1]);
            }),
            ("b.bias", &|p: &mut Pickle| {
                p.tensor("HalfStorage", "1", 4, 1, &[3], &[1]);
            }),
        ]);
        let sd = load(&data).unwrap();
        assert_eq!(sd.tensors.len(), 2);
        assert_eq!(sd.tensors[0].0, "a.weight");
        assert_eq!(sd.tensors[0].1.size, vec![2, 3]);
        assert_eq!(sd.tensors[1].1.offset, 1);
        assert_eq!(sd.storages[1].kind, StorageKind::F16);
        assert_eq!(sd.storages[0].numel, 6);
    }

    #[test]
    fn nested_dicts_give_dotted_names_and_other_values_are_ignored() {
        let mut p = Pickle::new();
        p.op(b'}')
            .op(b'(')
            .str("epoch")
            .int(3)
            .str("model")
            .op(b'}')
            .op(b'(');
        p.str("w");
        p.tensor("FloatStorage", "0", 2, 0, &[2], &[1]);
        p.op(b'u').op(b'u').op(b'.');
        let sd = load(&p.0).unwrap();
        assert_eq!(sd.tensors.len(), 1);
        assert_eq!(sd.tensors[0].0, "model.w");
    }

    #[test]
    fn refuses_code_execution() {
        // GLOBAL os.system + REDUCE: refused at the GLOBAL, before anything could run.
        let mut p = Pickle::new();
        p.global("os", "system")
            .str("echo pwned")
            .op(0x85)
            .op(b'R')
            .op(b'.');
        let e = load(&p.0).unwrap_err().to_string();
        assert!(
            e.contains("ckpt.bin") && e.contains("os.system") && e.contains("byte 2"),
            "{e}"
        );
        let mut p = Pickle::new();
        p.global("builtins", "eval")
            .str("1+1")
            .op(0x85)
            .op(b'R')
            .op(b'.');
        let e = load(&p.0).unwrap_err().to_string();
        assert!(e.contains("builtins.eval"), "{e}");
        // STACK_GLOBAL spelling.
        let mut p = Pickle::new();
        p.str("posix").str("system").op(0x93).op(b'.');
        let e = load(&p.0).unwrap_err().to_string();
        assert!(e.contains("posix.system"), "{e}");
        // INST / OBJ / NEWOBJ.
        for (op, name) in [(b'i', "INST"), (b'o', "OBJ"), (0x81, "NEWOBJ")] {
            let mut p = Pickle::new();
            p.op(b'(').op(op);
            let e = load(&p.0).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains("byte 3"), "{e}");
        }
        // REDUCE on something that is not an allowlisted callable.
        let mut p = Pickle::new();
        p.str("os.system").op(b')').op(b'R').op(b'.');
        let e = load(&p.0).unwrap_err().to_string();
        assert!(e.contains("REDUCE on a string"), "{e}");
        // An allowlisted callable with the wrong arguments.
        let mut p = Pickle::new();
        p.global("collections", "OrderedDict")
            .str("x")
            .op(0x85)
            .op(b'R')
            .op(b'.');
        let e = load(&p.0).unwrap_err().to_string();
        assert!(e.contains("REDUCE on OrderedDict"), "{e}");
        // BUILD on a tensor.
        let mut p = Pickle::new();
        p.tensor("FloatStorage", "0", 1, 0, &[1], &[1])
            .op(b'}')
            .op(b'b')
            .op(b'.');
        let e = load(&p.0).unwrap_err().to_string();
        assert!(e.contains("BUILD on a tensor"), "{e}");
        // An unknown opcode byte.
        let e = load(&[0x80, 2, 0xF0]).unwrap_err().to_string();
        assert!(e.contains("0xf0"), "{e}");
    }

    #[test]
    fn refuses_malformed_pickles_without_panicking() {
        let good = Pickle::new().state_dict(&[("a", &|p: &mut Pickle| {
            p.tensor("FloatStorage", "0", 6, 0, &[2, 3], &[3, 1]);
        })]);
        for cut in 0..good.len() {
            assert!(load(&good[..cut]).is_err(), "cut {cut}");
        }
        // Flip every byte in turn: never a panic (errors or odd-but-valid results only).
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xA5;
            let _ = load(&bad);
        }
        // Oversized string length.
        let e = load(&[0x80, 2, b'X', 0xFF, 0xFF, 0xFF, 0x7F])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cap"), "{e}");
        // Memo get of a missing entry; pop from an empty stack.
        assert!(load(&[0x80, 2, b'h', 7, b'.'])
            .unwrap_err()
            .to_string()
            .contains("memo"));
        assert!(load(&[0x80, 2, b'.'])
            .unwrap_err()
            .to_string()
            .contains("underflow"));
        // MARK bombs hit the cap.
        let mut deep = vec![0x80, 2];
        deep.extend(std::iter::repeat_n(b'(', MAX_MARKS + 1));
        assert!(load(&deep).unwrap_err().to_string().contains("MARK"));
        // A list at the root is not a state dict.
        let e = load(&[0x80, 2, b']', b'.']).unwrap_err().to_string();
        assert!(e.contains("not a dict of tensors"), "{e}");
    }
}
