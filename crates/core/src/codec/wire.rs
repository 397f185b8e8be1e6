//! Protobuf at the wire level: walk the fields of a message without a schema, and
//! rebuild a message from its original field bytes with a few fields replaced, dropped
//! or inserted.
//!
//! This is what makes restores lossless: decoding with prost and re-encoding drops the
//! fields that the compiled schema does not know (fields newer than `k8s-pb`). Walking
//! the wire format keeps every byte of every field that is not edited, including the
//! exact encoding of its tag. The object-level edits built on this live in
//! [`super::edit`] and are re-exported here ([`edit_object`], [`ObjectEdits`]).
//!
//! This module knows the protobuf wire format only; it knows nothing about Kubernetes
//! types and does no I/O.

use std::fmt;

pub use super::edit::{edit_object, ObjectEdits};

/// The six protobuf wire types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    /// 0: a varint.
    Varint,
    /// 1: eight bytes.
    Fixed64,
    /// 2: a varint length and that many bytes (strings, bytes, messages, packed).
    LengthDelimited,
    /// 3: start of a (deprecated) group.
    StartGroup,
    /// 4: end of a group.
    EndGroup,
    /// 5: four bytes.
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Option<WireType> {
        Some(match bits {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::LengthDelimited,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            _ => return None,
        })
    }

    fn bits(self) -> u64 {
        match self {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::LengthDelimited => 2,
            WireType::StartGroup => 3,
            WireType::EndGroup => 4,
            WireType::Fixed32 => 5,
        }
    }
}

/// A malformed protobuf message: what was wrong and at which byte offset of the buffer
/// being walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// Byte offset in the walked buffer.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for WireError {}

fn wire_err(offset: usize, reason: impl Into<String>) -> WireError {
    WireError {
        offset,
        reason: reason.into(),
    }
}

/// One field of a message as it is on the wire.
///
/// `raw` is the complete field (tag, length if any, value), so copying `raw` reproduces
/// the field byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field number.
    pub number: u32,
    /// The wire type from the tag.
    pub wire_type: WireType,
    /// The whole field: tag, length prefix (if any) and value.
    pub raw: &'a [u8],
    /// Length of the tag varint at the start of `raw` (kept to re-use its exact bytes).
    pub tag_len: usize,
    /// The value: for length-delimited fields the content without the length prefix;
    /// for varints the varint bytes; for fixed fields the 4 or 8 bytes; for groups
    /// everything between the start and end tags.
    pub value: &'a [u8],
    /// Offset of `raw` in the walked buffer.
    pub offset: usize,
}

impl<'a> Field<'a> {
    /// The tag bytes exactly as they were encoded.
    pub fn tag_bytes(&self) -> &'a [u8] {
        &self.raw[..self.tag_len]
    }

    /// Whether this is a length-delimited field.
    pub fn is_len(&self) -> bool {
        self.wire_type == WireType::LengthDelimited
    }

    /// The value of a length-delimited field as UTF-8 text.
    pub fn as_str(&self) -> Result<&'a str, WireError> {
        if !self.is_len() {
            return Err(wire_err(
                self.offset,
                format!("field {} is not length-delimited", self.number),
            ));
        }
        std::str::from_utf8(self.value).map_err(|_| {
            wire_err(
                self.offset,
                format!("field {} is not valid UTF-8", self.number),
            )
        })
    }

    /// The value of a varint field.
    pub fn as_varint(&self) -> Result<u64, WireError> {
        if self.wire_type != WireType::Varint {
            return Err(wire_err(
                self.offset,
                format!("field {} is not a varint", self.number),
            ));
        }
        let mut pos = 0;
        read_varint(self.value, &mut pos)
    }
}

/// Read a varint at `*pos`, advancing `*pos` past it.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let start = *pos;
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&byte) = buf.get(*pos) else {
            return Err(wire_err(start, "truncated varint (buffer ends inside it)"));
        };
        *pos += 1;
        if i == 9 && byte > 1 {
            return Err(wire_err(start, "varint longer than 64 bits"));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(wire_err(start, "varint longer than 10 bytes"))
}

/// Append `value` as a varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Append a tag for `number` with `wire_type`.
pub fn put_tag(out: &mut Vec<u8>, number: u32, wire_type: WireType) {
    put_varint(out, (u64::from(number) << 3) | wire_type.bits());
}

/// Append a length-delimited field (string, bytes or message).
pub fn put_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_tag(out, number, WireType::LengthDelimited);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// A length-delimited field as a new buffer.
pub fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    put_len_field(&mut out, number, payload);
    out
}

/// Iterator over the fields of a message; see [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Walk the top-level fields of the message in `buf`.
///
/// The iterator yields an error (and then stops) at the first malformed field: a
/// truncated tag, length or value, an invalid wire type, field number 0, or an
/// unmatched group end.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields {
        buf,
        pos: 0,
        failed: false,
    }
}

/// All top-level fields of the message in `buf`, or the first wire error.
pub fn parse(buf: &[u8]) -> Result<Vec<Field<'_>>, WireError> {
    fields(buf).collect()
}

impl<'a> Fields<'a> {
    fn read_tag(&mut self) -> Result<(u32, WireType), WireError> {
        let start = self.pos;
        let tag = read_varint(self.buf, &mut self.pos)?;
        let wire_type = WireType::from_bits(tag & 7)
            .ok_or_else(|| wire_err(start, format!("invalid wire type {}", tag & 7)))?;
        let number = tag >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(wire_err(start, format!("invalid field number {number}")));
        }
        Ok((number as u32, wire_type))
    }

    fn take(&mut self, len: u64, what: &str) -> Result<&'a [u8], WireError> {
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| {
                wire_err(
                    start,
                    format!(
                        "truncated {what}: needs {len} bytes, {} left",
                        self.buf.len() - start
                    ),
                )
            })?;
        self.pos = end;
        Ok(&self.buf[start..end])
    }

    /// Skip the body of a group whose start tag has just been read; returns the body.
    fn skip_group(&mut self, number: u32) -> Result<&'a [u8], WireError> {
        let body_start = self.pos;
        loop {
            if self.pos >= self.buf.len() {
                return Err(wire_err(
                    body_start,
                    format!("group {number} has no end tag"),
                ));
            }
            let before = self.pos;
            let (n, wt) = self.read_tag()?;
            match wt {
                WireType::EndGroup if n == number => return Ok(&self.buf[body_start..before]),
                WireType::EndGroup => {
                    return Err(wire_err(
                        before,
                        format!("end of group {n} inside group {number}"),
                    ))
                }
                _ => self.skip_value(n, wt)?,
            };
        }
    }

    fn skip_value(&mut self, number: u32, wire_type: WireType) -> Result<&'a [u8], WireError> {
        match wire_type {
            WireType::Varint => {
                let start = self.pos;
                read_varint(self.buf, &mut self.pos)?;
                Ok(&self.buf[start..self.pos])
            }
            WireType::Fixed64 => self.take(8, "fixed64 value"),
            WireType::Fixed32 => self.take(4, "fixed32 value"),
            WireType::LengthDelimited => {
                let len = read_varint(self.buf, &mut self.pos)?;
                self.take(len, &format!("length-delimited field {number}"))
            }
            WireType::StartGroup => self.skip_group(number),
            WireType::EndGroup => Err(wire_err(
                self.pos,
                format!("end of group {number} without a start"),
            )),
        }
    }

    fn next_field(&mut self) -> Result<Field<'a>, WireError> {
        let start = self.pos;
        let (number, wire_type) = self.read_tag()?;
        let tag_len = self.pos - start;
        let value = self.skip_value(number, wire_type)?;
        Ok(Field {
            number,
            wire_type,
            raw: &self.buf[start..self.pos],
            tag_len,
            value,
            offset: start,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let result = self.next_field();
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}

/// What to do with one existing field when a message is rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldAction {
    /// Copy the field's bytes unchanged.
    Keep,
    /// Leave the field out.
    Drop,
    /// Keep the field's tag bytes, write a new length and this payload (for
    /// length-delimited fields). A payload equal to the old one copies the field
    /// unchanged, length prefix included.
    Replace(Vec<u8>),
}

/// A plan to rebuild one message: an action per existing field and new fields to
/// insert.
///
/// Inserted fields go in field-number order: before the first kept field whose number
/// is greater (after every existing field of the same number), which is where a
/// Kubernetes (gogo-protobuf) encoder would have put them.
#[derive(Debug, Clone)]
pub struct Rewrite<'a> {
    fields: Vec<Field<'a>>,
    actions: Vec<FieldAction>,
    inserts: Vec<(u32, Vec<u8>)>,
}

impl<'a> Rewrite<'a> {
    /// Parse `buf` and start a plan that keeps every field.
    pub fn new(buf: &'a [u8]) -> Result<Self, WireError> {
        let fields = parse(buf)?;
        let actions = vec![FieldAction::Keep; fields.len()];
        Ok(Rewrite {
            fields,
            actions,
            inserts: Vec::new(),
        })
    }

    /// The parsed fields (index `i` pairs with the action set by [`Rewrite::set`]).
    pub fn fields(&self) -> &[Field<'a>] {
        &self.fields
    }

    /// Set the action for the field at `index`.
    pub fn set(&mut self, index: usize, action: FieldAction) {
        if let Some(slot) = self.actions.get_mut(index) {
            *slot = action;
        }
    }

    /// Indexes of the fields with this number.
    pub fn indexes_of(&self, number: u32) -> Vec<usize> {
        (0..self.fields.len())
            .filter(|&i| self.fields[i].number == number)
            .collect()
    }

    /// Drop every field with this number.
    pub fn drop_number(&mut self, number: u32) {
        for i in self.indexes_of(number) {
            self.actions[i] = FieldAction::Drop;
        }
    }

    /// Insert a complete encoded field (tag included) with this number.
    pub fn insert(&mut self, number: u32, encoded_field: Vec<u8>) {
        self.inserts.push((number, encoded_field));
    }

    /// Set a string field: replace every occurrence, or insert one if there is none.
    pub fn set_string(&mut self, number: u32, value: &str) -> Result<(), WireError> {
        let idx = self.indexes_of(number);
        if idx.is_empty() {
            self.insert(number, len_field(number, value.as_bytes()));
        }
        for i in idx {
            let f = self.fields[i];
            if !f.is_len() {
                return Err(wire_err(
                    f.offset,
                    format!("field {number} is not length-delimited"),
                ));
            }
            self.actions[i] = FieldAction::Replace(value.as_bytes().to_vec());
        }
        Ok(())
    }

    /// Edit every embedded message with this number through `edit` (which gets the old
    /// payload and returns the new one). If there is none and `insert_if_missing` is
    /// set, `edit` is called with an empty message and a non-empty result is inserted.
    ///
    /// Returns how many existing messages were edited.
    pub fn edit_message<E>(
        &mut self,
        number: u32,
        insert_if_missing: bool,
        mut edit: impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
    ) -> Result<usize, E>
    where
        E: From<WireError>,
    {
        let idx = self.indexes_of(number);
        if idx.is_empty() && insert_if_missing {
            let payload = edit(&[])?;
            if !payload.is_empty() {
                self.insert(number, len_field(number, &payload));
            }
        }
        for &i in &idx {
            let f = self.fields[i];
            if !f.is_len() {
                return Err(wire_err(
                    f.offset,
                    format!("field {number} is not an embedded message"),
                )
                .into());
            }
            self.actions[i] = FieldAction::Replace(edit(f.value)?);
        }
        Ok(idx.len())
    }

    /// Whether the plan changes nothing.
    pub fn is_noop(&self) -> bool {
        self.inserts.is_empty()
            && self.actions.iter().zip(&self.fields).all(|(a, f)| match a {
                FieldAction::Keep => true,
                FieldAction::Drop => false,
                FieldAction::Replace(p) => p.as_slice() == f.value,
            })
    }

    /// Build the new message.
    pub fn finish(self) -> Vec<u8> {
        let Rewrite {
            fields,
            actions,
            mut inserts,
        } = self;
        inserts.sort_by_key(|(n, _)| *n); // stable: keeps the order of equal numbers
        let total: usize = fields.iter().map(|f| f.raw.len()).sum::<usize>()
            + inserts.iter().map(|(_, b)| b.len()).sum::<usize>();
        let mut out = Vec::with_capacity(total + 16);
        let mut pending = inserts.into_iter().peekable();
        for (field, action) in fields.iter().zip(actions) {
            while let Some((_, bytes)) = pending.next_if(|(n, _)| *n < field.number) {
                out.extend_from_slice(&bytes);
            }
            match action {
                FieldAction::Keep => out.extend_from_slice(field.raw),
                FieldAction::Drop => {}
                FieldAction::Replace(payload) if payload.as_slice() == field.value => {
                    out.extend_from_slice(field.raw)
                }
                FieldAction::Replace(payload) => {
                    out.extend_from_slice(field.tag_bytes());
                    put_varint(&mut out, payload.len() as u64);
                    out.extend_from_slice(&payload);
                }
            }
        }
        for (_, bytes) in pending {
            out.extend_from_slice(&bytes);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut pos = 0;
            assert_eq!(read_varint(&buf, &mut pos).unwrap(), v);
            assert_eq!(pos, buf.len());
        }
    }

    #[test]
    fn truncated_fields_are_errors() {
        let mut msg = len_field(1, b"hello");
        msg.pop();
        let err = parse(&msg).unwrap_err();
        assert!(err.reason.contains("truncated"), "{err}");
        assert!(parse(&[0x80]).is_err());
        assert!(parse(&[0x07]).unwrap_err().reason.contains("wire type"));
        assert!(parse(&[0x00]).unwrap_err().reason.contains("field number"));
    }

    #[test]
    fn groups_are_skipped_whole() {
        // field 1 group { field 2 varint 5 } end, then field 3 varint 1
        let msg = [0x0b, 0x10, 0x05, 0x0c, 0x18, 0x01];
        let f = parse(&msg).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].wire_type, WireType::StartGroup);
        assert_eq!(f[0].value, &[0x10, 0x05]);
        assert_eq!(f[1].as_varint().unwrap(), 1);
    }

    #[test]
    fn rewrite_keeps_unedited_bytes_and_inserts_in_order() {
        let mut msg = Vec::new();
        put_len_field(&mut msg, 1, b"a");
        put_len_field(&mut msg, 5, b"b");
        put_len_field(&mut msg, 9, b"c");
        let rw = Rewrite::new(&msg).unwrap();
        assert!(rw.is_noop());
        assert_eq!(rw.finish(), msg);

        let mut rw = Rewrite::new(&msg).unwrap();
        rw.set_string(3, "new").unwrap();
        rw.set_string(9, "C").unwrap();
        rw.drop_number(1);
        let out = rw.finish();
        let f = parse(&out).unwrap();
        let got: Vec<(u32, &str)> = f.iter().map(|f| (f.number, f.as_str().unwrap())).collect();
        assert_eq!(got, vec![(3, "new"), (5, "b"), (9, "C")]);
    }
}
