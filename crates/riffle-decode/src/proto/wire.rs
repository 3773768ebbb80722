//! Protocol Buffers' wire format ([`Wire`]) and a reader of descriptor sets
//! ([`Types`]: `descriptor.proto`'s own encoding, only names, numbers, labels, types, nested
//! types, enums and the map-entry option), for the Protobuf decoders.

use std::collections::HashMap;

use crate::DecodeError;

/// Reads protobuf's wire format.
pub(crate) struct Wire<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Wire<'a> {
    pub(crate) fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        crate::varint::read(self.data, &mut self.pos).map_err(|e| match e {
            crate::varint::VarintError::Truncated => {
                DecodeError::new("the protobuf message ends early")
            }
            crate::varint::VarintError::TooLong => {
                DecodeError::new("a varint longer than 10 bytes")
            }
        })
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        crate::varint::take(self.data, &mut self.pos, n)
            .ok_or_else(|| DecodeError::new(format!("a length of {n} bytes runs past the message")))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| DecodeError::new("a length past the message"))?)
    }

    /// The next field's number and wire type.
    pub(crate) fn tag(&mut self) -> Result<(u32, u8), DecodeError> {
        let t = self.varint()?;
        let number =
            u32::try_from(t >> 3).map_err(|_| DecodeError::new("a field number out of range"))?;
        Ok((number, (t & 7) as u8))
    }

    /// Skips a value of `wire` type.
    pub(crate) fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.take(8).map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => self.take(4).map(|_| ()),
            w => Err(DecodeError::new(format!(
                "wire type {w} (groups) is not read"
            ))),
        }
    }
}

/// A field of a message.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub(crate) name: String,
    /// `FieldDescriptorProto.Type`.
    pub(crate) kind: i32,
    pub(crate) repeated: bool,
    /// Message or enum type name (full, with a leading dot).
    pub(crate) type_name: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Message {
    pub(crate) fields: HashMap<u32, Field>,
    pub(crate) map_entry: bool,
    /// Nested message types in declaration order (full names).
    pub(crate) nested: Vec<String>,
}

/// The messages and enums of a descriptor set, by full name (`.pkg.Name`).
#[derive(Debug, Default)]
pub(crate) struct Types {
    pub(crate) messages: HashMap<String, Message>,
    pub(crate) enums: HashMap<String, HashMap<i32, String>>,
    pub(crate) first: Option<String>,
    /// Each file's top-level messages in declaration order (full names).
    pub(crate) files: Vec<Vec<String>>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Types {
    pub(crate) fn parse(set: &[u8]) -> Result<Types, DecodeError> {
        let mut t = Types::default();
        let mut w = Wire { data: set, pos: 0 };
        while !w.done() {
            let (n, wire) = w.tag()?;
            if n == 1 && wire == 2 {
                t.file(w.bytes()?)?;
            } else {
                w.skip(wire)?;
            }
        }
        Ok(t)
    }

    pub(crate) fn file(&mut self, b: &[u8]) -> Result<(), DecodeError> {
        let mut w = Wire { data: b, pos: 0 };
        let mut package = String::new();
        let mut messages = Vec::new();
        let mut enums = Vec::new();
        while !w.done() {
            match w.tag()? {
                (2, 2) => package = text(w.bytes()?),
                (4, 2) => messages.push(w.bytes()?),
                (5, 2) => enums.push(w.bytes()?),
                (_, wire) => w.skip(wire)?,
            }
        }
        let scope = if package.is_empty() {
            String::new()
        } else {
            format!(".{package}")
        };
        for e in enums {
            self.enumeration(&scope, e)?;
        }
        let mut top = Vec::new();
        for m in messages {
            top.push(self.message(&scope, m, 0)?);
        }
        self.files.push(top);
        Ok(())
    }

    pub(crate) fn enumeration(&mut self, scope: &str, b: &[u8]) -> Result<(), DecodeError> {
        let mut w = Wire { data: b, pos: 0 };
        let (mut name, mut values) = (String::new(), HashMap::new());
        while !w.done() {
            match w.tag()? {
                (1, 2) => name = text(w.bytes()?),
                (2, 2) => {
                    let mut v = Wire {
                        data: w.bytes()?,
                        pos: 0,
                    };
                    let (mut vn, mut num) = (String::new(), 0i32);
                    while !v.done() {
                        match v.tag()? {
                            (1, 2) => vn = text(v.bytes()?),
                            (2, 0) => num = v.varint()? as i32,
                            (_, wire) => v.skip(wire)?,
                        }
                    }
                    values.insert(num, vn);
                }
                (_, wire) => w.skip(wire)?,
            }
        }
        self.enums.insert(format!("{scope}.{name}"), values);
        Ok(())
    }

    /// Reads a message type (and its nested types); returns its full name.
    pub(crate) fn message(
        &mut self,
        scope: &str,
        b: &[u8],
        depth: usize,
    ) -> Result<String, DecodeError> {
        if depth > 32 {
            return Err(DecodeError::new("messages nest too deep in the descriptor"));
        }
        let mut w = Wire { data: b, pos: 0 };
        let mut name = String::new();
        let mut fields = Vec::new();
        let mut nested = Vec::new();
        let mut enums = Vec::new();
        let mut map_entry = false;
        while !w.done() {
            match w.tag()? {
                (1, 2) => name = text(w.bytes()?),
                (2, 2) => fields.push(w.bytes()?),
                (3, 2) => nested.push(w.bytes()?),
                (4, 2) => enums.push(w.bytes()?),
                (7, 2) => {
                    let mut o = Wire {
                        data: w.bytes()?,
                        pos: 0,
                    };
                    while !o.done() {
                        match o.tag()? {
                            (7, 0) => map_entry = o.varint()? != 0,
                            (_, wire) => o.skip(wire)?,
                        }
                    }
                }
                (_, wire) => w.skip(wire)?,
            }
        }
        let full = format!("{scope}.{name}");
        let mut m = Message {
            map_entry,
            ..Default::default()
        };
        for f in fields {
            let mut fw = Wire { data: f, pos: 0 };
            let mut field = Field {
                name: String::new(),
                kind: 0,
                repeated: false,
                type_name: String::new(),
            };
            let mut number = 0u32;
            while !fw.done() {
                match fw.tag()? {
                    (1, 2) => field.name = text(fw.bytes()?),
                    (3, 0) => number = fw.varint()? as u32,
                    (4, 0) => field.repeated = fw.varint()? == 3,
                    (5, 0) => field.kind = fw.varint()? as i32,
                    (6, 2) => field.type_name = text(fw.bytes()?),
                    (_, wire) => fw.skip(wire)?,
                }
            }
            m.fields.insert(number, field);
        }
        for e in enums {
            self.enumeration(&full, e)?;
        }
        for n in nested {
            let name = self.message(&full, n, depth + 1)?;
            m.nested.push(name);
        }
        if depth == 0 && self.first.is_none() {
            self.first = Some(full.clone());
        }
        self.messages.insert(full.clone(), m);
        Ok(full)
    }

    /// The message a Confluent message-index path names: the index of a top-level message
    /// of the schema's own file (the first in the set), then of a nested type, and so on.
    pub(crate) fn by_index(&self, path: &[i64]) -> Option<&str> {
        let (first, rest) = path.split_first()?;
        let mut name = self.files.first()?.get(usize::try_from(*first).ok()?)?;
        for i in rest {
            name = self
                .messages
                .get(name)?
                .nested
                .get(usize::try_from(*i).ok()?)?;
        }
        Some(name)
    }

    /// A message by full name or simple name.
    pub(crate) fn find(&self, name: &str) -> Option<&str> {
        let want = name.trim().trim_start_matches('.');
        if want.is_empty() {
            return self.first.as_deref();
        }
        let dotted = format!(".{want}");
        if let Some((k, _)) = self.messages.get_key_value(&dotted) {
            return Some(k);
        }
        let suffix = format!(".{}", want.rsplit(['.', '$']).next().unwrap_or(want));
        self.messages
            .keys()
            .find(|k| k.ends_with(&suffix))
            .map(String::as_str)
    }
}

/// Protobuf's field types (`FieldDescriptorProto.Type`).
pub(crate) mod kind {
    pub const DOUBLE: i32 = 1;
    pub const FLOAT: i32 = 2;
    pub const INT64: i32 = 3;
    pub const UINT64: i32 = 4;
    pub const INT32: i32 = 5;
    pub const FIXED64: i32 = 6;
    pub const FIXED32: i32 = 7;
    pub const BOOL: i32 = 8;
    pub const STRING: i32 = 9;
    pub const MESSAGE: i32 = 11;
    pub const BYTES: i32 = 12;
    pub const UINT32: i32 = 13;
    pub const ENUM: i32 = 14;
    pub const SFIXED32: i32 = 15;
    pub const SFIXED64: i32 = 16;
    pub const SINT32: i32 = 17;
    pub const SINT64: i32 = 18;
}
