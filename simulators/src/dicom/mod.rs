//! DICOM: a modality simulator that generates valid Part-10 instances and sends them with
//! C-STORE over N associations.
//!
//! - [`generate`]: a seeded, deterministic patient/study/series/instance hierarchy with
//!   realistic tags and pixel data of a chosen size;
//! - [`part10`]: an instance as C-STORE data set bytes or a Part-10 file, and `write_dir`;
//! - [`modality`]: what differs between CT, MR, CR and US (SOP class, image module, bodies);
//! - [`pixels`]: how a byte budget becomes rows × columns, and the synthetic image itself;
//! - [`uid`]: UIDs derived from the seed (`2.25.<decimal>`), and their validity check;
//! - [`send`]: the run over N associations in parallel, and [`report`]: what it measured.
//!
//! The association itself (establish, C-STORE, C-ECHO, release; DIMSE command sets; P-DATA
//! framing) is medbus-adapters' storage SCU, [`scu`], the one the PACS forwarder uses.

pub mod generate;
pub mod modality;
pub mod part10;
pub mod pixels;
pub mod report;
pub mod send;
pub mod uid;

pub use medbus_adapters::dicom::scu;
