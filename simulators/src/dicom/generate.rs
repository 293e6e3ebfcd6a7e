//! A deterministic modality: `patients` × `studies_per_patient` × `series_per_study` series
//! sharing `instances` images, each a complete Part-10 instance with the patient, study,
//! series, equipment, image and pixel modules a PACS expects.
//!
//! Every value is a function of the configuration and the instance's position, never of a
//! running random stream: instance `i` can be made on its own (each association generates
//! its share in parallel), and the same arguments give the same UIDs and bytes on every run
//! and every machine, so a rerun is a resend of the same instances. Encoding an
//! [`Instance`] as a data set or a Part-10 file is in [`super::part10`].

use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries;

use super::modality::Modality;
use super::part10::pixel_data_header;
use super::pixels::{self, Layout};
use super::uid::{self, Namespace};

/// The transfer syntax of the files and of the C-STORE data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Syntax {
    /// Explicit VR Little Endian (1.2.840.10008.1.2.1).
    #[default]
    Explicit,
    /// Implicit VR Little Endian (1.2.840.10008.1.2), the default every SCP must accept.
    Implicit,
}

impl Syntax {
    /// Its UID.
    pub fn uid(self) -> &'static str {
        self.ts().uid()
    }

    /// The registry entry used to encode.
    pub fn ts(self) -> TransferSyntax {
        match self {
            Syntax::Explicit => entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
            Syntax::Implicit => entries::IMPLICIT_VR_LITTLE_ENDIAN.erased(),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateConfig {
    /// Distinct patients.
    pub patients: u64,
    /// Studies of each patient.
    pub studies_per_patient: u64,
    /// Series in each study.
    pub series_per_study: u64,
    /// Instances in all, spread evenly over the series (at least one each).
    pub instances: u64,
    /// The modality (SOP class, pixel format, protocols).
    pub modality: Modality,
    /// Bytes of Pixel Data per instance; rows and columns are chosen to match exactly.
    pub pixel_bytes: u64,
    /// Names the data set: with the rest of the configuration it fixes every UID and byte.
    pub seed: u64,
    /// Accession numbers are `<prefix><study number, 5 digits>` (at most 16 characters in
    /// all); `S<seed>-` when not given.
    pub accession_prefix: Option<String>,
    /// Transfer syntax of the encoded instances (not part of their identity: the same
    /// instance in another syntax keeps its UIDs).
    pub syntax: Syntax,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            patients: 10,
            studies_per_patient: 1,
            series_per_study: 2,
            instances: 100,
            modality: Modality::Ct,
            pixel_bytes: 512 * 1024,
            seed: 1,
            accession_prefix: None,
            syntax: Syntax::Explicit,
        }
    }
}

/// Why a configuration cannot be generated, or an instance not encoded or written.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The arguments do not describe a possible data set.
    #[error("{0}")]
    Config(String),
    /// dicom-object refused to encode (a bug here, not in the input).
    #[error("cannot encode instance {index}: {message}")]
    Encode {
        /// The instance.
        index: u64,
        /// The encoder's message.
        message: String,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// What [`Generator::instance`] derives from each kind of value, so two kinds never share a UID.
mod kind {
    pub const STUDY: u64 = 1;
    pub const SERIES: u64 = 2;
    pub const INSTANCE: u64 = 3;
    pub const FRAME: u64 = 4;
    pub const PATIENT: u64 = 5;
    pub const STUDY_FACTS: u64 = 6;
    pub const NOISE: u64 = 7;
}

/// A configured modality; [`Generator::instance`] makes any instance on its own.
#[derive(Debug, Clone)]
pub struct Generator {
    cfg: GenerateConfig,
    ns: Namespace,
    layout: Layout,
    prefix: String,
    series_total: u64,
}

/// One generated instance and where it sits in the hierarchy.
#[derive(Debug, Clone)]
pub struct Instance {
    /// 0-based position in the run.
    pub index: u64,
    /// 0-based patient, study and series of the run.
    pub patient: u64,
    /// 0-based study of the run.
    pub study: u64,
    /// 0-based series of the run.
    pub series: u64,
    /// 0-based position in its series (Instance Number − 1).
    pub position: u64,
    /// Patient ID (0010,0020).
    pub patient_id: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID.
    pub series_uid: String,
    /// SOP Class UID.
    pub sop_class_uid: &'static str,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Every element of the data set except Pixel Data (no file meta group).
    pub object: InMemDicomObject,
    /// The Pixel Data (7FE0,0010) value, little-endian: the data set's last element, kept
    /// apart so that encoding appends it instead of copying it through dicom-object twice
    /// (that halves generation time for 512 KiB images).
    pub pixel_data: Vec<u8>,
    /// OW for 16-bit pixels, OB for 8-bit.
    pub pixel_vr: VR,
}

const FAMILY: &[&str] = &[
    "SMITH", "JOHNSON", "GARCIA", "MUELLER", "ROSSI", "DUBOIS", "NOWAK", "SILVA", "KOWALSKI", "NGUYEN", "OKAFOR",
    "TANAKA", "BERG", "JANSEN", "LOPEZ", "HANSEN",
];
const GIVEN_F: &[&str] = &["MARIA", "ANNA", "SOFIA", "EMMA", "LEA", "CHLOE", "AMINA", "YUKI"];
const GIVEN_M: &[&str] = &["JOHN", "LUCAS", "MATEO", "NOAH", "ADAM", "PIOTR", "KENJI", "OMAR"];
const REFERRERS: &[&str] = &[
    "HOUSE^GREGORY^^DR",
    "GREY^MEREDITH^^DR",
    "ROSS^DOUG^^DR",
    "QUINN^MICHAELA^^DR",
];

impl Generator {
    /// Checks the configuration and prepares the generator.
    pub fn new(cfg: GenerateConfig) -> Result<Generator, GenerateError> {
        let bad = |m: String| Err(GenerateError::Config(m));
        if cfg.patients == 0 || cfg.studies_per_patient == 0 || cfg.series_per_study == 0 {
            return bad("patients, studies per patient and series per study must each be at least 1".into());
        }
        let series_total = cfg
            .patients
            .checked_mul(cfg.studies_per_patient)
            .and_then(|s| s.checked_mul(cfg.series_per_study))
            .ok_or_else(|| GenerateError::Config("too many series".into()))?;
        if cfg.instances < series_total {
            return bad(format!(
                "{} instances cannot fill {series_total} series ({} patients × {} studies × {} series): \
                 every series needs at least one",
                cfg.instances, cfg.patients, cfg.studies_per_patient, cfg.series_per_study
            ));
        }
        // Pixel Data's length field is 32 bits; a gigabyte per image is already absurd here.
        if cfg.pixel_bytes > 1 << 30 {
            return bad(format!(
                "pixel data of {} bytes: at most 1 GiB per instance",
                cfg.pixel_bytes
            ));
        }
        let (allocated, stored) = cfg.modality.bits();
        let layout = Layout::for_bytes(cfg.pixel_bytes, allocated, stored).map_err(GenerateError::Config)?;
        let prefix = cfg
            .accession_prefix
            .clone()
            .unwrap_or_else(|| format!("S{}-", cfg.seed));
        let studies = series_total / cfg.series_per_study;
        if prefix.len() + studies.to_string().len().max(5) > 16 || !prefix.is_ascii() || prefix.contains('\\') {
            return bad(format!(
                "accession prefix {prefix:?} is too long for {studies} studies: Accession Number holds \
                 16 ASCII characters (pass a shorter --accession-prefix)"
            ));
        }
        // Everything that names the data set; not the transfer syntax (same instances, other encoding).
        let ns = Namespace::of(&format!(
            "medbus-sim dicom 1;seed={};patients={};studies={};series={};instances={};modality={};pixel_bytes={};prefix={}",
            cfg.seed,
            cfg.patients,
            cfg.studies_per_patient,
            cfg.series_per_study,
            cfg.instances,
            cfg.modality.code(),
            cfg.pixel_bytes,
            prefix
        ));
        Ok(Generator {
            cfg,
            ns,
            layout,
            prefix,
            series_total,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GenerateConfig {
        &self.cfg
    }

    /// Rows, columns and bits of every instance.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Number of instances.
    pub fn len(&self) -> u64 {
        self.cfg.instances
    }

    /// True when there are none (never, once constructed).
    pub fn is_empty(&self) -> bool {
        self.cfg.instances == 0
    }

    /// The series instance `i` belongs to, and its 0-based position in it. Series get
    /// contiguous runs of instances whose lengths differ by at most one.
    pub fn place(&self, i: u64) -> (u64, u64) {
        let (n, s) = (u128::from(self.cfg.instances), u128::from(self.series_total));
        let series = (u128::from(i) * s / n) as u64;
        // First instance of that series: ceil(series × n / s).
        let first = (u128::from(series) * n).div_ceil(s) as u64;
        (series, i - first)
    }

    /// Instance `i` (0-based, below [`Generator::len`]).
    pub fn instance(&self, i: u64) -> Instance {
        let mut instance = self.header(i);
        let layout = self.layout;
        instance.pixel_data = pixels::phantom(&layout, instance.position, self.noise(i), self.cfg.modality.levels());
        instance
    }

    /// Encodes instance `i`'s data set in the configured syntax into `out` (cleared first),
    /// drawing the pixels straight into it: what the sender uses, with one buffer recycled
    /// per association. Returns the instance without its pixel data (UIDs, hierarchy).
    pub fn encode_dataset_into(&self, i: u64, out: &mut Vec<u8>) -> Result<Instance, GenerateError> {
        let instance = self.header(i);
        let syntax = self.cfg.syntax;
        out.clear();
        out.reserve(self.layout.bytes() + 4096);
        instance
            .object
            .write_dataset_with_ts(&mut *out, &syntax.ts())
            .map_err(|e| instance.encode_error(e.to_string()))?;
        pixel_data_header(out, syntax, instance.pixel_vr, self.layout.bytes());
        pixels::phantom_into(
            &self.layout,
            instance.position,
            self.noise(i),
            self.cfg.modality.levels(),
            out,
        );
        Ok(instance)
    }

    fn noise(&self, i: u64) -> u64 {
        self.ns.bits(kind::NOISE, i)
    }

    /// Instance `i` without its pixel data.
    fn header(&self, i: u64) -> Instance {
        let cfg = &self.cfg;
        let (series, position) = self.place(i);
        let study = series / cfg.series_per_study;
        let patient = study / cfg.studies_per_patient;
        let ns = self.ns;

        // Patient: sex, name and birth date from the patient's own draw.
        let p = ns.bits(kind::PATIENT, patient);
        let female = p & 1 == 0;
        let given = if female { GIVEN_F } else { GIVEN_M };
        let name = format!(
            "{}^{}",
            FAMILY[((p >> 8) % FAMILY.len() as u64) as usize],
            given[((p >> 16) % given.len() as u64) as usize]
        );
        // Born 1935-01-01 .. 2019-12-31 (days since 1970: −12784 .. 18261).
        let birth_days = -12_784 + ((p >> 24) % 31_045) as i64;
        let patient_id = format!("MS{}-{:05}", cfg.seed, patient + 1);

        // Study: date in 2026, time 07:00–18:59, protocol, referrer.
        let f = ns.bits(kind::STUDY_FACTS, study);
        let study_days = 20_454 + (f % 365) as i64; // 2026-01-01 + 0..364
        let study_secs = 7 * 3600 + ((f >> 16) % (12 * 3600));
        let protocols = cfg.modality.protocols();
        let protocol = protocols[((f >> 32) % protocols.len() as u64) as usize];
        let referrer = REFERRERS[((f >> 40) % REFERRERS.len() as u64) as usize];
        let series_in_study = series % cfg.series_per_study;
        let series_secs = study_secs + 600 * series_in_study;
        let content_secs = series_secs + position;

        let study_uid = uid::derive(ns, kind::STUDY, study);
        let series_uid = uid::derive(ns, kind::SERIES, series);
        let sop_instance_uid = uid::derive(ns, kind::INSTANCE, i);
        let frame_uid = uid::derive(ns, kind::FRAME, series);
        let sop_class_uid = cfg.modality.sop_class_uid();
        let layout = self.layout;

        let s = |tag, vr, v: String| DataElement::new(tag, vr, v);
        let us = |tag, v: u16| DataElement::new(tag, VR::US, dicom_core::PrimitiveValue::from(v));
        let mut elements = vec![
            s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100".into()),
            s(tags::SOP_CLASS_UID, VR::UI, sop_class_uid.into()),
            s(tags::SOP_INSTANCE_UID, VR::UI, sop_instance_uid.clone()),
            s(tags::STUDY_DATE, VR::DA, date(study_days)),
            s(tags::SERIES_DATE, VR::DA, date(study_days)),
            s(tags::CONTENT_DATE, VR::DA, date(study_days)),
            s(tags::STUDY_TIME, VR::TM, time(study_secs)),
            s(tags::SERIES_TIME, VR::TM, time(series_secs)),
            s(tags::CONTENT_TIME, VR::TM, time(content_secs)),
            s(
                tags::ACCESSION_NUMBER,
                VR::SH,
                format!("{}{:05}", self.prefix, study + 1),
            ),
            s(tags::MODALITY, VR::CS, cfg.modality.code().into()),
            s(tags::MANUFACTURER, VR::LO, "MEDBUS".into()),
            s(tags::INSTITUTION_NAME, VR::LO, "MEDBUS GENERAL HOSPITAL".into()),
            s(tags::REFERRING_PHYSICIAN_NAME, VR::PN, referrer.into()),
            s(tags::STATION_NAME, VR::SH, format!("MODSIM{}", cfg.modality.code())),
            s(tags::STUDY_DESCRIPTION, VR::LO, protocol.study.into()),
            s(
                tags::SERIES_DESCRIPTION,
                VR::LO,
                protocol.series[(series_in_study % protocol.series.len() as u64) as usize].into(),
            ),
            s(tags::MANUFACTURER_MODEL_NAME, VR::LO, "MODSIM".into()),
            s(tags::PATIENT_NAME, VR::PN, name),
            s(tags::PATIENT_ID, VR::LO, patient_id.clone()),
            s(tags::PATIENT_BIRTH_DATE, VR::DA, date(birth_days)),
            s(tags::PATIENT_SEX, VR::CS, if female { "F" } else { "M" }.into()),
            s(
                tags::PATIENT_AGE,
                VR::AS,
                format!("{:03}Y", (study_days - birth_days) / 365),
            ),
            s(tags::BODY_PART_EXAMINED, VR::CS, protocol.body_part.into()),
            s(tags::SOFTWARE_VERSIONS, VR::LO, "MODSIM 1".into()),
            s(tags::STUDY_INSTANCE_UID, VR::UI, study_uid.clone()),
            s(tags::SERIES_INSTANCE_UID, VR::UI, series_uid.clone()),
            s(tags::STUDY_ID, VR::SH, format!("{}", study + 1)),
            s(tags::SERIES_NUMBER, VR::IS, format!("{}", series_in_study + 1)),
            s(tags::INSTANCE_NUMBER, VR::IS, format!("{}", position + 1)),
            us(tags::SAMPLES_PER_PIXEL, 1),
            s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2".into()),
            us(tags::ROWS, layout.rows),
            us(tags::COLUMNS, layout.columns),
            us(tags::BITS_ALLOCATED, layout.bits_allocated),
            us(tags::BITS_STORED, layout.bits_stored),
            us(tags::HIGH_BIT, layout.bits_stored - 1),
            us(tags::PIXEL_REPRESENTATION, 0),
        ];
        if !protocol.laterality.is_empty() {
            elements.push(s(tags::LATERALITY, VR::CS, protocol.laterality.into()));
        }
        elements.extend(cfg.modality.image_elements(position, layout.columns, &frame_uid));
        let pixel_vr = if layout.bits_allocated > 8 { VR::OW } else { VR::OB };
        Instance {
            index: i,
            patient,
            study,
            series,
            patient_id,
            study_uid,
            series_uid,
            sop_class_uid,
            sop_instance_uid,
            object: InMemDicomObject::from_element_iter(elements),
            position,
            pixel_data: Vec::new(),
            pixel_vr,
        }
    }

    /// All instances in order (each made when asked for).
    pub fn iter(&self) -> impl Iterator<Item = Instance> + '_ {
        (0..self.cfg.instances).map(|i| self.instance(i))
    }
}

/// `YYYYMMDD` for a day count since 1970-01-01 (Hinnant's civil-from-days).
fn date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}")
}

/// `HHMMSS` for seconds since midnight (wrapping at a day).
fn time(secs: u64) -> String {
    let s = secs % 86_400;
    format!("{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(date(0), "19700101");
        assert_eq!(date(20_454), "20260101");
        assert_eq!(date(-12_784), "19350101");
        assert_eq!(date(11_016), "20000229");
        assert_eq!(time(7 * 3600 + 61), "070101");
    }

    #[test]
    fn series_are_contiguous_and_balanced() {
        let gen = Generator::new(GenerateConfig {
            patients: 3,
            series_per_study: 2,
            instances: 20,
            pixel_bytes: 64,
            ..GenerateConfig::default()
        })
        .unwrap();
        let places: Vec<_> = (0..20).map(|i| gen.place(i)).collect();
        let mut sizes = [0u64; 6];
        for (i, (s, pos)) in places.iter().enumerate() {
            sizes[*s as usize] += 1;
            if i > 0 && places[i - 1].0 == *s {
                assert_eq!(places[i - 1].1 + 1, *pos);
            } else {
                assert_eq!(*pos, 0);
            }
        }
        assert!(sizes.iter().all(|n| (3..=4).contains(n)), "{sizes:?}");
    }

    #[test]
    fn the_sender_path_encodes_the_same_bytes() {
        for syntax in [Syntax::Explicit, Syntax::Implicit] {
            let gen = Generator::new(GenerateConfig {
                patients: 1,
                instances: 3,
                pixel_bytes: 2 * 30 * 20,
                syntax,
                ..GenerateConfig::default()
            })
            .unwrap();
            let mut buf = vec![1, 2, 3];
            for i in 0..3 {
                let head = gen.encode_dataset_into(i, &mut buf).unwrap();
                let whole = gen.instance(i);
                assert_eq!(buf, whole.dataset_bytes(syntax).unwrap());
                assert_eq!(head.sop_instance_uid, whole.sop_instance_uid);
                assert!(head.pixel_data.is_empty());
            }
        }
    }

    #[test]
    fn bad_configurations_are_refused() {
        let with = |f: fn(&mut GenerateConfig)| {
            let mut c = GenerateConfig::default();
            f(&mut c);
            Generator::new(c)
        };
        assert!(with(|c| c.instances = 5).is_err());
        assert!(with(|c| c.patients = 0).is_err());
        assert!(with(|c| c.pixel_bytes = 3).is_err());
        assert!(with(|c| c.accession_prefix = Some("A-VERY-LONG-PREFIX".into())).is_err());
        assert!(with(|_| {}).is_ok());
    }
}
