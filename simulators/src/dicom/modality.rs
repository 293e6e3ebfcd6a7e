//! What differs between modalities: the SOP class, the pixel format, the stored values of the
//! phantom, the studies a department would do, and the modality's own image module.

use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::mem::InMemElement;

/// The kind of equipment simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Modality {
    /// Computed tomography: CT Image Storage, 16-bit (12 stored), HU rescale, axial slices.
    #[default]
    #[value(name = "CT", alias = "ct")]
    Ct,
    /// Magnetic resonance: MR Image Storage, 16-bit (12 stored), spin echo.
    #[value(name = "MR", alias = "mr")]
    Mr,
    /// Computed radiography: CR Image Storage, 16-bit (12 stored), projection images.
    #[value(name = "CR", alias = "cr")]
    Cr,
    /// Ultrasound: Ultrasound Image Storage, 8-bit grey.
    #[value(name = "US", alias = "us")]
    Us,
}

/// A kind of study: its description, the body part, and the descriptions of its series.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    /// Study Description (0008,1030).
    pub study: &'static str,
    /// Body Part Examined (0018,0015).
    pub body_part: &'static str,
    /// Series Description (0008,103E), cycled through the study's series.
    pub series: &'static [&'static str],
    /// Laterality (0020,0060) of a paired body part, or empty.
    pub laterality: &'static str,
}

const CT_PROTOCOLS: &[Protocol] = &[
    Protocol {
        study: "CT CHEST W/O CONTRAST",
        body_part: "CHEST",
        series: &["AXIAL 1.25MM LUNG", "AXIAL 5MM SOFT TISSUE", "CORONAL 3MM"],
        laterality: "",
    },
    Protocol {
        study: "CT ABDOMEN PELVIS W CONTRAST",
        body_part: "ABDOMEN",
        series: &["AXIAL 5MM PORTAL", "AXIAL 2.5MM ARTERIAL", "CORONAL 3MM"],
        laterality: "",
    },
    Protocol {
        study: "CT HEAD W/O CONTRAST",
        body_part: "HEAD",
        series: &["AXIAL 5MM BRAIN", "AXIAL 1MM BONE"],
        laterality: "",
    },
];

const MR_PROTOCOLS: &[Protocol] = &[
    Protocol {
        study: "MR BRAIN W/O CONTRAST",
        body_part: "BRAIN",
        series: &["AX T1 SE", "AX T2 TSE", "SAG T1 SE"],
        laterality: "",
    },
    Protocol {
        study: "MR KNEE RIGHT",
        body_part: "KNEE",
        series: &["SAG PD FS", "COR T1 SE", "AX PD FS"],
        laterality: "R",
    },
];

const CR_PROTOCOLS: &[Protocol] = &[
    Protocol {
        study: "XR CHEST 2 VIEWS",
        body_part: "CHEST",
        series: &["PA", "LATERAL"],
        laterality: "",
    },
    Protocol {
        study: "XR HAND LEFT",
        body_part: "HAND",
        series: &["PA", "OBLIQUE"],
        laterality: "L",
    },
];

const US_PROTOCOLS: &[Protocol] = &[
    Protocol {
        study: "US ABDOMEN COMPLETE",
        body_part: "ABDOMEN",
        series: &["LIVER", "KIDNEYS"],
        laterality: "",
    },
    Protocol {
        study: "US THYROID",
        body_part: "NECK",
        series: &["THYROID"],
        laterality: "",
    },
];

impl Modality {
    /// The Modality (0008,0060) code.
    pub fn code(self) -> &'static str {
        match self {
            Modality::Ct => "CT",
            Modality::Mr => "MR",
            Modality::Cr => "CR",
            Modality::Us => "US",
        }
    }

    /// The storage SOP class of its images.
    pub fn sop_class_uid(self) -> &'static str {
        match self {
            Modality::Ct => uids::CT_IMAGE_STORAGE,
            Modality::Mr => uids::MR_IMAGE_STORAGE,
            Modality::Cr => uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
            Modality::Us => uids::ULTRASOUND_IMAGE_STORAGE,
        }
    }

    /// (Bits Allocated, Bits Stored) of its MONOCHROME2 pixels.
    pub fn bits(self) -> (u16, u16) {
        match self {
            Modality::Us => (8, 8),
            _ => (16, 12),
        }
    }

    /// Stored values of air, soft tissue and bone in the phantom. For CT these are
    /// HU + 1024 (Rescale Intercept −1024): −1024, 40 and 700 HU.
    pub fn levels(self) -> [u16; 3] {
        match self {
            Modality::Ct => [0, 1064, 1724],
            Modality::Mr => [0, 900, 300],
            Modality::Cr => [3800, 1800, 600],
            Modality::Us => [0, 110, 220],
        }
    }

    /// The studies this department does.
    pub fn protocols(self) -> &'static [Protocol] {
        match self {
            Modality::Ct => CT_PROTOCOLS,
            Modality::Mr => MR_PROTOCOLS,
            Modality::Cr => CR_PROTOCOLS,
            Modality::Us => US_PROTOCOLS,
        }
    }

    /// The attributes of its image module (and of the series, plane and frame of reference
    /// modules where the IOD has them), for the instance at 0-based `position` in its series.
    pub fn image_elements(self, position: u64, columns: u16, frame_of_reference: &str) -> Vec<InMemElement> {
        let e = |tag, vr, v: &str| DataElement::new(tag, vr, v.to_string());
        // Field of view over the columns (350 mm CT, 240 mm MR); slices step by their thickness.
        let (thickness, fov) = match self {
            Modality::Ct => (5.0, 350.0),
            _ => (4.0, 240.0),
        };
        let spacing = fov / f64::from(columns.max(1));
        let z = -(position as f64) * thickness;
        let plane = |v: &mut Vec<InMemElement>| {
            v.push(e(tags::PATIENT_POSITION, VR::CS, "HFS"));
            v.push(e(tags::FRAME_OF_REFERENCE_UID, VR::UI, frame_of_reference));
            v.push(e(tags::POSITION_REFERENCE_INDICATOR, VR::LO, ""));
            v.push(e(
                tags::PIXEL_SPACING,
                VR::DS,
                &format!("{}\\{}", ds(spacing), ds(spacing)),
            ));
            v.push(e(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0"));
            let origin = ds(-fov / 2.0);
            v.push(e(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                &format!("{origin}\\{origin}\\{}", ds(z)),
            ));
            v.push(e(tags::SLICE_THICKNESS, VR::DS, &ds(thickness)));
            v.push(e(tags::SLICE_LOCATION, VR::DS, &ds(z)));
        };
        let mut v = Vec::new();
        match self {
            Modality::Ct => {
                v.push(e(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\AXIAL"));
                v.push(e(tags::KVP, VR::DS, "120"));
                v.push(e(tags::ACQUISITION_NUMBER, VR::IS, "1"));
                v.push(e(tags::CONVOLUTION_KERNEL, VR::SH, "STANDARD"));
                v.push(e(tags::RESCALE_INTERCEPT, VR::DS, "-1024"));
                v.push(e(tags::RESCALE_SLOPE, VR::DS, "1"));
                v.push(e(tags::RESCALE_TYPE, VR::LO, "HU"));
                v.push(e(tags::WINDOW_CENTER, VR::DS, "40"));
                v.push(e(tags::WINDOW_WIDTH, VR::DS, "400"));
                plane(&mut v);
            }
            Modality::Mr => {
                v.push(e(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\OTHER"));
                v.push(e(tags::SCANNING_SEQUENCE, VR::CS, "SE"));
                v.push(e(tags::SEQUENCE_VARIANT, VR::CS, "NONE"));
                v.push(e(tags::SCAN_OPTIONS, VR::CS, ""));
                v.push(e(tags::MR_ACQUISITION_TYPE, VR::CS, "2D"));
                v.push(e(tags::REPETITION_TIME, VR::DS, "500"));
                v.push(e(tags::ECHO_TIME, VR::DS, "15"));
                v.push(e(tags::ECHO_TRAIN_LENGTH, VR::IS, "1"));
                v.push(e(tags::MAGNETIC_FIELD_STRENGTH, VR::DS, "1.5"));
                v.push(e(tags::IMAGED_NUCLEUS, VR::SH, "1H"));
                v.push(e(tags::ACQUISITION_NUMBER, VR::IS, "1"));
                v.push(e(tags::SPACING_BETWEEN_SLICES, VR::DS, &ds(thickness)));
                plane(&mut v);
            }
            Modality::Cr => {
                v.push(e(tags::VIEW_POSITION, VR::CS, "PA"));
                v.push(e(tags::PATIENT_ORIENTATION, VR::CS, "L\\F"));
                v.push(e(tags::KVP, VR::DS, "110"));
                v.push(e(tags::IMAGER_PIXEL_SPACING, VR::DS, "0.15\\0.15"));
            }
            Modality::Us => {
                v.push(e(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\ABDOMINAL"));
                v.push(e(tags::PATIENT_ORIENTATION, VR::CS, ""));
            }
        }
        v
    }
}

/// A Decimal String value (at most 16 characters): up to 6 decimals, trailing zeros removed.
pub fn ds(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    let s = if s == "-0" { "0" } else { s };
    s.chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::ds;

    #[test]
    fn decimal_strings_are_short() {
        assert_eq!(ds(0.68359375), "0.683594");
        assert_eq!(ds(-175.0), "-175");
        assert_eq!(ds(-0.0), "0");
        assert!(ds(1e12 / 3.0).len() <= 16);
    }
}
