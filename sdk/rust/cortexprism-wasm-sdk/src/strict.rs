//! A transparent `serde::Deserializer` wrapper that makes structs require JSON objects and
//! bounds the nesting depth.
//!
//! serde's derived `Deserialize` for a struct also accepts a JSON *array* of the field values in
//! declaration order (`["hello", "reverse"]` for `struct { text, mode }`). For plugin inputs that is
//! a surprise, and it disagrees with every other language SDK, so the SDK deserialises through
//! [`Strict`]: it forwards everything to serde_json unchanged, except that a struct (or a struct
//! enum variant), at any depth, fed a sequence fails with
//! `invalid type: sequence, expected struct X`.
//!
//! It also counts nested arrays/objects as they are deserialised and fails with
//! `input nesting deeper than 1024 levels` past [`crate::MAX_INPUT_DEPTH`], so that recursive types
//! (`serde_json::Value`, trees) cannot overflow the wasm stack now that serde_json's own
//! recursion limit (128) is lifted. Values skipped as unknown fields are ignored by serde_json
//! without recursion and are not counted. The checks cost nothing per byte of input.
//!
//! The wrapper is applied recursively through every `SeqAccess`, `MapAccess`, `EnumAccess` and
//! `DeserializeSeed`. (Values that serde buffers internally, inside `#[serde(untagged)]` or
//! `#[serde(flatten)]`, are deserialised by serde itself and keep serde's default rules.)

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Error as _, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};
use std::fmt;

use crate::MAX_INPUT_DEPTH;

/// Wraps a deserializer; see the module documentation. `depth` is the number of arrays/objects
/// enclosing the value it deserialises (0 at the top).
pub struct Strict<D> {
    de: D,
    depth: usize,
}

impl<D> Strict<D> {
    /// Wraps the top-level deserializer.
    pub fn new(de: D) -> Self {
        Strict { de, depth: 0 }
    }
}

struct Wrap<V> {
    inner: V,
    depth: usize,
    /// Set for struct visitors: a sequence is refused.
    struct_visitor: bool,
}

impl<V> Wrap<V> {
    /// The nesting depth of the containers this visitor may open.
    fn inner_depth<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_INPUT_DEPTH {
            return Err(E::custom(format_args!(
                "input nesting deeper than {} levels",
                MAX_INPUT_DEPTH
            )));
        }
        Ok(self.depth + 1)
    }
}

struct Seed<S>(S, usize);
struct Seq<A>(A, usize);
struct Map<A>(A, usize);
struct Enum<A>(A, usize);
struct Variant<A>(A, usize);

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.de.$method($($arg,)* Wrap { inner: visitor, depth: self.depth, struct_visitor: false })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = Wrap { inner: visitor, depth: self.depth, struct_visitor: true };
        self.de.deserialize_struct(name, fields, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_some(Strict { de: d, depth: self.depth })
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_newtype_struct(Strict { de: d, depth: self.depth })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        if self.struct_visitor {
            return Err(A::Error::invalid_type(Unexpected::Seq, &self));
        }
        let depth = self.inner_depth()?;
        self.inner.visit_seq(Seq(seq, depth))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let depth = self.inner_depth()?;
        self.inner.visit_map(Map(map, depth))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        // {"Variant": value} is an object in JSON
        let depth = self.inner_depth()?;
        self.inner.visit_enum(Enum(data, depth))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Strict { de: d, depth: self.1 })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed, self.1))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Seed(seed, self.1))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed, self.1))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(Seed(seed, self.1))?;
        Ok((value, Variant(variant, self.1)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed, self.1))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap { inner: visitor, depth: self.1, struct_visitor: false })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap { inner: visitor, depth: self.1, struct_visitor: true })
    }
}
