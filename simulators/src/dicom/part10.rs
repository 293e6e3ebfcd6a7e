//! Instances as bytes: the data set a C-STORE carries, the Part-10 file (preamble, `DICM`,
//! file meta group via dicom-object's `FileMetaTableBuilder`), and a directory of `.dcm` files.
//!
//! dicom-object encodes every element but Pixel Data; that one, the largest tag and so the
//! last element, is appended here, which spares two copies of 512 KiB per instance.

use std::path::Path;

use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

use super::generate::{GenerateError, Generator, Instance, Syntax};

/// The implementation that writes the files (0002,0012): ours, fixed, so bytes do not move
/// with the dicom-rs version.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.137203866120731264917651206624113468941";
/// Implementation Version Name (0002,0013).
pub const IMPLEMENTATION_VERSION_NAME: &str = "MEDBUS_SIM_1";

impl Instance {
    /// The data set alone in `syntax`, as a C-STORE carries it.
    pub fn dataset_bytes(&self, syntax: Syntax) -> Result<Vec<u8>, GenerateError> {
        let mut out = Vec::with_capacity(self.pixel_data.len() + 4096);
        self.object
            .write_dataset_with_ts(&mut out, &syntax.ts())
            .map_err(|e| self.encode_error(e.to_string()))?;
        self.append_pixel_data(&mut out, syntax);
        Ok(out)
    }

    /// The Part-10 file: preamble, `DICM`, file meta group, data set in `syntax`.
    pub fn part10_bytes(&self, syntax: Syntax) -> Result<Vec<u8>, GenerateError> {
        let file = self
            .object
            .clone()
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax(syntax.uid())
                    .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                    .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
            )
            .map_err(|e| self.encode_error(e.to_string()))?;
        let mut out = Vec::with_capacity(self.pixel_data.len() + 4096);
        file.write_all(&mut out).map_err(|e| self.encode_error(e.to_string()))?;
        self.append_pixel_data(&mut out, syntax);
        Ok(out)
    }

    /// The whole data set as one object, Pixel Data included (a copy).
    pub fn to_object(&self) -> InMemDicomObject {
        let mut obj = self.object.clone();
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            self.pixel_vr,
            dicom_core::PrimitiveValue::from(self.pixel_data.clone()),
        ));
        obj
    }

    fn append_pixel_data(&self, out: &mut Vec<u8>, syntax: Syntax) {
        pixel_data_header(out, syntax, self.pixel_vr, self.pixel_data.len());
        out.extend_from_slice(&self.pixel_data);
    }

    pub(super) fn encode_error(&self, message: String) -> GenerateError {
        GenerateError::Encode {
            index: self.index,
            message,
        }
    }
}

/// Appends the header of the Pixel Data element, which has the largest tag of the data set
/// and so comes last (PS3.5 7.1: ascending tag order); native pixels have an explicit, even
/// length (at most 1 GiB, checked by [`Generator::new`]).
pub(super) fn pixel_data_header(out: &mut Vec<u8>, syntax: Syntax, vr: VR, len: usize) {
    out.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
    if syntax == Syntax::Explicit {
        out.extend_from_slice(if vr == VR::OW { b"OW" } else { b"OB" });
        out.extend_from_slice(&[0, 0]);
    }
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

/// What [`write_dir`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Files.
    pub files: u64,
    /// Bytes in all.
    pub bytes: u64,
}

/// Writes every instance as `IMG<n>.dcm` (1-based, zero-padded so names sort in order) in
/// `dir`, created if missing: a corpus for dcmtk `storescu` or Orthanc.
pub fn write_dir(gen: &Generator, dir: &Path) -> Result<Written, GenerateError> {
    let io = |path: &Path, source| GenerateError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let width = gen.len().to_string().len().max(6);
    let mut written = Written { files: 0, bytes: 0 };
    for instance in gen.iter() {
        let bytes = instance.part10_bytes(gen.config().syntax)?;
        let path = dir.join(format!("IMG{:0width$}.dcm", instance.index + 1));
        std::fs::write(&path, &bytes).map_err(|e| io(&path, e))?;
        written.files += 1;
        written.bytes += bytes.len() as u64;
    }
    Ok(written)
}
