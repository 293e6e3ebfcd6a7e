//! The `resourceType` element. Serde's struct tag writes it but never checks
//! it on the way in, so each resource carries a [`ResourceType`] marker field
//! instead: it writes the resource's name and refuses any other.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A FHIR resource type, named by its `resourceType`.
pub trait Resource {
    /// The `resourceType` value, e.g. `Patient`.
    const TYPE: &'static str;
}

/// The `resourceType` element of resource `R`: always `R::TYPE`.
pub struct ResourceType<R>(PhantomData<fn() -> R>);

impl<R> ResourceType<R> {
    /// The marker (there is only one value).
    pub const fn new() -> Self {
        ResourceType(PhantomData)
    }
}

// Written by hand: derives would require `R` itself to implement each trait.
impl<R> Default for ResourceType<R> {
    fn default() -> Self {
        Self::new()
    }
}
impl<R> Clone for ResourceType<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for ResourceType<R> {}
impl<R> PartialEq for ResourceType<R> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<R> Eq for ResourceType<R> {}
impl<R: Resource> fmt::Debug for ResourceType<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(R::TYPE)
    }
}

impl<R: Resource> Serialize for ResourceType<R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(R::TYPE)
    }
}

impl<'de, R: Resource> Deserialize<'de> for ResourceType<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let found = String::deserialize(d)?;
        if found == R::TYPE {
            Ok(Self::new())
        } else {
            Err(serde::de::Error::custom(format_args!(
                "resourceType is {found:?}, expected {:?}",
                R::TYPE
            )))
        }
    }
}
