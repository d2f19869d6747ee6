//! AMF0 values (the encoding of RTMP commands and metadata), with the AMF3 values that
//! clients put inside AMF0 data through the "switch to AMF3" marker.
//!
//! Decoding is bounded: nesting depth and element counts are limited, and every length is
//! checked against the input, so a hostile message costs at most its own size.

use bytes::{BufMut, BytesMut};

/// Deepest nesting of objects/arrays accepted.
pub const MAX_DEPTH: usize = 32;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    /// ECMA array: keyed like an object.
    EcmaArray(Vec<(String, Value)>),
    StrictArray(Vec<Value>),
    Date(f64),
    /// An AMF3 value, kept as its bytes' meaning where simple, else as opaque.
    Amf3(Amf3),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Amf3 {
    Undefined,
    Null,
    Bool(bool),
    Integer(i32),
    Double(f64),
    String(String),
    /// A complex AMF3 value (object, array, …) that we pass on without interpreting.
    Other,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    Truncated,
    UnknownMarker(u8),
    TooDeep,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Truncated => write!(f, "truncated AMF value"),
            Error::UnknownMarker(m) => write!(f, "unknown AMF0 marker 0x{m:02x}"),
            Error::TooDeep => write!(f, "AMF nesting deeper than {MAX_DEPTH}"),
        }
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::Amf3(Amf3::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Amf3(Amf3::Double(n)) => Some(*n),
            Value::Amf3(Amf3::Integer(n)) => Some(*n as f64),
            _ => None,
        }
    }

    /// A property of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) => p.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn str(s: &str) -> Value {
        Value::String(s.to_owned())
    }

    pub fn object(props: &[(&str, Value)]) -> Value {
        Value::Object(props.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
    }
}

/// Reads AMF0 values one after another from a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Error> {
        let b = self.take(8)?;
        Ok(f64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    fn string(&mut self, len: usize) -> Result<String, Error> {
        let b = self.take(len)?;
        // Clients send Latin-1 now and then; keep what is UTF-8, replace the rest.
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    /// Reads the next value.
    pub fn read(&mut self) -> Result<Value, Error> {
        self.value(0)
    }

    /// Reads all remaining values.
    pub fn read_all(&mut self) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        while !self.is_empty() {
            out.push(self.read()?);
        }
        Ok(out)
    }

    fn props(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Error> {
        let mut props = Vec::new();
        loop {
            let len = self.u16()? as usize;
            // An empty key followed by the object-end marker (9) closes the object; an
            // empty key with a value is unusual but legal.
            if len == 0 && self.buf.get(self.pos) == Some(&9) {
                self.pos += 1;
                return Ok(props);
            }
            let key = self.string(len)?;
            let v = self.value(depth + 1)?;
            props.push((key, v));
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        Ok(match self.u8()? {
            0 => Value::Number(self.f64()?),
            1 => Value::Boolean(self.u8()? != 0),
            2 => {
                let n = self.u16()? as usize;
                Value::String(self.string(n)?)
            }
            3 => Value::Object(self.props(depth)?),
            5 => Value::Null,
            6 => Value::Undefined,
            8 => {
                let _count = self.u32()?; // a hint only; the end marker ends it
                Value::EcmaArray(self.props(depth)?)
            }
            10 => {
                let n = self.u32()? as usize;
                // Every element takes at least one byte: a count beyond the input is a lie.
                if n > self.buf.len() - self.pos {
                    return Err(Error::Truncated);
                }
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            11 => {
                let t = self.f64()?;
                self.u16()?;
                Value::Date(t)
            }
            12 => {
                let n = self.u32()? as usize;
                Value::String(self.string(n)?)
            }
            17 => Value::Amf3(self.amf3()?),
            m => return Err(Error::UnknownMarker(m)),
        })
    }

    fn u29(&mut self) -> Result<u32, Error> {
        let mut v: u32 = 0;
        for i in 0..4 {
            let b = self.u8()?;
            if i == 3 {
                return Ok((v << 8) | b as u32);
            }
            v = (v << 7) | (b & 0x7f) as u32;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        unreachable!()
    }

    fn amf3(&mut self) -> Result<Amf3, Error> {
        Ok(match self.u8()? {
            0 => Amf3::Undefined,
            1 => Amf3::Null,
            2 => Amf3::Bool(false),
            3 => Amf3::Bool(true),
            4 => {
                let v = self.u29()?;
                // 29-bit two's complement.
                Amf3::Integer(((v << 3) as i32) >> 3)
            }
            5 => Amf3::Double(self.f64()?),
            6 => {
                let h = self.u29()?;
                if h & 1 == 0 {
                    // A reference to an earlier string: we keep no table.
                    Amf3::Other
                } else {
                    Amf3::String(self.string((h >> 1) as usize)?)
                }
            }
            // Complex AMF3 values: consume the rest, nothing after them can be read reliably.
            _ => {
                self.pos = self.buf.len();
                Amf3::Other
            }
        })
    }
}

/// Appends the AMF0 encoding of `v`.
pub fn write(out: &mut BytesMut, v: &Value) {
    fn key(out: &mut BytesMut, k: &str) {
        out.put_u16(k.len().min(u16::MAX as usize) as u16);
        out.put_slice(&k.as_bytes()[..k.len().min(u16::MAX as usize)]);
    }
    match v {
        Value::Number(n) => {
            out.put_u8(0);
            out.put_f64(*n);
        }
        Value::Boolean(b) => {
            out.put_u8(1);
            out.put_u8(*b as u8);
        }
        Value::String(s) if s.len() <= u16::MAX as usize => {
            out.put_u8(2);
            key(out, s);
        }
        Value::String(s) => {
            out.put_u8(12);
            out.put_u32(s.len() as u32);
            out.put_slice(s.as_bytes());
        }
        Value::Object(props) | Value::EcmaArray(props) => {
            if let Value::EcmaArray(_) = v {
                out.put_u8(8);
                out.put_u32(props.len() as u32);
            } else {
                out.put_u8(3);
            }
            for (k, v) in props {
                key(out, k);
                write(out, v);
            }
            out.put_slice(&[0, 0, 9]);
        }
        Value::Null => out.put_u8(5),
        Value::Undefined | Value::Amf3(_) => out.put_u8(6),
        Value::StrictArray(items) => {
            out.put_u8(10);
            out.put_u32(items.len() as u32);
            for i in items {
                write(out, i);
            }
        }
        Value::Date(t) => {
            out.put_u8(11);
            out.put_f64(*t);
            out.put_u16(0);
        }
    }
}

/// Encodes a list of values.
pub fn encode(values: &[Value]) -> BytesMut {
    let mut out = BytesMut::with_capacity(128);
    for v in values {
        write(&mut out, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let values = vec![
            Value::str("connect"),
            Value::Number(1.0),
            Value::object(&[
                ("app", Value::str("live")),
                ("fpad", Value::Boolean(false)),
                ("audioCodecs", Value::Number(3575.0)),
                ("nested", Value::object(&[("x", Value::Null)])),
            ]),
            Value::Null,
            Value::Undefined,
            Value::EcmaArray(vec![("width".into(), Value::Number(1280.0))]),
            Value::StrictArray(vec![Value::Number(1.0), Value::str("a")]),
            Value::Date(1234.0),
            Value::String("x".repeat(70_000)),
        ];
        let bytes = encode(&values);
        let back = Reader::new(&bytes).read_all().unwrap();
        assert_eq!(back, values);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let mut deep = vec![];
        for _ in 0..1000 {
            deep.extend_from_slice(&[10, 0, 0, 0, 1]);
        }
        assert_eq!(Reader::new(&deep).read(), Err(Error::TooDeep));
        assert_eq!(Reader::new(&[2, 0, 5, b'a']).read(), Err(Error::Truncated));
        assert_eq!(Reader::new(&[10, 0xff, 0xff, 0xff, 0xff]).read(), Err(Error::Truncated));
        assert_eq!(Reader::new(&[12, 0xff, 0xff, 0xff, 0xff]).read(), Err(Error::Truncated));
        assert_eq!(Reader::new(&[0x42]).read(), Err(Error::UnknownMarker(0x42)));
        assert_eq!(Reader::new(&[3, 0, 1, b'k']).read(), Err(Error::Truncated));
        // Every prefix of a valid encoding fails cleanly.
        let bytes = encode(&[Value::object(&[("a", Value::StrictArray(vec![Value::Number(2.0)]))])]);
        for n in 0..bytes.len() {
            assert!(Reader::new(&bytes[..n]).read().is_err());
        }
    }

    #[test]
    fn amf3_inside_amf0() {
        // switch marker, then AMF3 integer 5, string "hi", double 1.5, true
        let b = [17, 4, 5, 17, 6, 5, b'h', b'i', 17, 5, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 17, 3];
        let v = Reader::new(&b).read_all().unwrap();
        assert_eq!(v[0].as_f64(), Some(5.0));
        assert_eq!(v[1].as_str(), Some("hi"));
        assert_eq!(v[2].as_f64(), Some(1.5));
        assert_eq!(v[3], Value::Amf3(Amf3::Bool(true)));
        // negative 29-bit integer: -1 = 0xFF 0xFF 0xFF 0xFF
        let v = Reader::new(&[17, 4, 0xff, 0xff, 0xff, 0xff]).read().unwrap();
        assert_eq!(v.as_f64(), Some(-1.0));
    }
}
