//! DICOM: a modality simulator that generates valid Part-10 instances and sends them with
//! C-STORE over N associations.
//!
//! - [`generate`]: a seeded, deterministic patient/study/series/instance hierarchy with
//!   realistic tags and pixel data of a chosen size;
//! - [`part10`]: an instance as C-STORE data set bytes or a Part-10 file, and `write_dir`;
//! - [`modality`]: what differs between CT, MR, CR and US (SOP class, image module, bodies);
//! - [`pixels`]: how a byte budget becomes rows × columns, and the synthetic image itself;
//! - [`uid`]: UIDs derived from the seed (`2.25.<decimal>`), and their validity check;
//! - [`dimse`]: the C-STORE and C-ECHO command sets (dicom-ul does not do DIMSE);
//! - [`pdata`]: P-DATA-TF framing, fragmented to the peer's maximum PDU length;
//! - [`scu`]: one association: establish, C-STORE, C-ECHO, release;
//! - [`send`]: the run over N associations in parallel, and [`report`]: what it measured.

pub mod dimse;
pub mod generate;
pub mod modality;
pub mod part10;
pub mod pdata;
pub mod pixels;
pub mod report;
pub mod scu;
pub mod send;
pub mod uid;
