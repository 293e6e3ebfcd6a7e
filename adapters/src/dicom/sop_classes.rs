//! What the SCP accepts in association negotiation: the storage SOP classes
//! of the modalities medbus receives from, Verification, and the transfer
//! syntaxes it keeps as received (never transcoded).

use dicom_dictionary_std::uids;

/// Verification (C-ECHO).
pub const VERIFICATION: &str = uids::VERIFICATION;

/// Storage SOP classes accepted by default: CT, MR, CR, DX, MG, US, NM, PT, XA,
/// RF, secondary capture, structured reports and encapsulated PDF.
pub const STORAGE_SOP_CLASSES: &[&str] = &[
    // CT
    uids::CT_IMAGE_STORAGE,
    uids::ENHANCED_CT_IMAGE_STORAGE,
    uids::LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE,
    // MR
    uids::MR_IMAGE_STORAGE,
    uids::ENHANCED_MR_IMAGE_STORAGE,
    uids::LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE,
    // CR, DX, MG
    uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::BREAST_TOMOSYNTHESIS_IMAGE_STORAGE,
    // US
    uids::ULTRASOUND_IMAGE_STORAGE,
    uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
    // NM, PT
    uids::NUCLEAR_MEDICINE_IMAGE_STORAGE,
    uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
    uids::ENHANCED_PET_IMAGE_STORAGE,
    uids::LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE,
    // XA, RF
    uids::X_RAY_ANGIOGRAPHIC_IMAGE_STORAGE,
    uids::ENHANCED_XA_IMAGE_STORAGE,
    uids::X_RAY_RADIOFLUOROSCOPIC_IMAGE_STORAGE,
    uids::ENHANCED_XRF_IMAGE_STORAGE,
    // Secondary capture
    uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_SINGLE_BIT_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_BYTE_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE,
    // Structured reports
    uids::BASIC_TEXT_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::COMPREHENSIVE_SR_STORAGE,
    uids::COMPREHENSIVE3_DSR_STORAGE,
    uids::EXTENSIBLE_SR_STORAGE,
    uids::KEY_OBJECT_SELECTION_DOCUMENT_STORAGE,
    uids::MAMMOGRAPHY_CADSR_STORAGE,
    uids::CHEST_CADSR_STORAGE,
    uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
    uids::RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE,
    // Encapsulated documents
    uids::ENCAPSULATED_PDF_STORAGE,
];

/// Transfer syntaxes accepted by default, in order of preference when a
/// presentation context proposes several: uncompressed first, then the common
/// compressed ones, kept as received. Deflate is offered only because this
/// crate enables the registry's `deflate` feature (dicom-ul refuses a transfer
/// syntax the registry cannot read).
pub const TRANSFER_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    uids::JPEG_BASELINE8_BIT,
    uids::JPEG_EXTENDED12_BIT,
    uids::JPEG_LOSSLESS,
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEGLS_LOSSLESS,
    uids::JPEGLS_NEAR_LOSSLESS,
    uids::JPEG2000_LOSSLESS,
    uids::JPEG2000,
    uids::RLE_LOSSLESS,
];

/// A UID without the NUL or space padding DICOM puts after odd-length values.
pub fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_hold_no_duplicates_and_every_transfer_syntax_is_readable() {
        let mut all: Vec<&str> = STORAGE_SOP_CLASSES.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), STORAGE_SOP_CLASSES.len());
        for ts in TRANSFER_SYNTAXES {
            assert!(
                dicom_ul::association::server::is_supported(ts),
                "{ts} not readable by the registry"
            );
        }
    }

    #[test]
    fn padding_is_ignored() {
        assert_eq!(trim_uid("1.2.840.10008.5.1.4.1.1.2\0"), "1.2.840.10008.5.1.4.1.1.2");
        assert_eq!(trim_uid("1.2.3 "), "1.2.3");
    }
}
