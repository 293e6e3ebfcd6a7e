//! FHIR R4 (4.0.1) element names, hard-coded: what an inbound resource may
//! contain. Kept as plain lists so that a reviewer can compare them with the
//! specification page by page.

/// The resource types the inbound server accepts.
pub const SUPPORTED: [&str; 7] = [
    "Patient",
    "Encounter",
    "ServiceRequest",
    "Observation",
    "DiagnosticReport",
    "ImagingStudy",
    "ChargeItem",
];

/// Elements every DomainResource has.
const DOMAIN_RESOURCE: &[&str] = &[
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
];

const PATIENT: &[&str] = &[
    "identifier",
    "active",
    "name",
    "telecom",
    "gender",
    "birthDate",
    "deceasedBoolean",
    "deceasedDateTime",
    "address",
    "maritalStatus",
    "multipleBirthBoolean",
    "multipleBirthInteger",
    "photo",
    "contact",
    "communication",
    "generalPractitioner",
    "managingOrganization",
    "link",
];

const ENCOUNTER: &[&str] = &[
    "identifier",
    "status",
    "statusHistory",
    "class",
    "classHistory",
    "type",
    "serviceType",
    "priority",
    "subject",
    "episodeOfCare",
    "basedOn",
    "participant",
    "appointment",
    "period",
    "length",
    "reasonCode",
    "reasonReference",
    "diagnosis",
    "account",
    "hospitalization",
    "location",
    "serviceProvider",
    "partOf",
];

const SERVICE_REQUEST: &[&str] = &[
    "identifier",
    "instantiatesCanonical",
    "instantiatesUri",
    "basedOn",
    "replaces",
    "requisition",
    "status",
    "intent",
    "category",
    "priority",
    "doNotPerform",
    "code",
    "orderDetail",
    "quantityQuantity",
    "quantityRatio",
    "quantityRange",
    "subject",
    "encounter",
    "occurrenceDateTime",
    "occurrencePeriod",
    "occurrenceTiming",
    "asNeededBoolean",
    "asNeededCodeableConcept",
    "authoredOn",
    "requester",
    "performerType",
    "performer",
    "locationCode",
    "locationReference",
    "reasonCode",
    "reasonReference",
    "insurance",
    "supportingInfo",
    "specimen",
    "bodySite",
    "note",
    "patientInstruction",
    "relevantHistory",
];

const OBSERVATION: &[&str] = &[
    "identifier",
    "basedOn",
    "partOf",
    "status",
    "category",
    "code",
    "subject",
    "focus",
    "encounter",
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveTiming",
    "effectiveInstant",
    "issued",
    "performer",
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
    "dataAbsentReason",
    "interpretation",
    "note",
    "bodySite",
    "method",
    "specimen",
    "device",
    "referenceRange",
    "hasMember",
    "derivedFrom",
    "component",
];

const DIAGNOSTIC_REPORT: &[&str] = &[
    "identifier",
    "basedOn",
    "status",
    "category",
    "code",
    "subject",
    "encounter",
    "effectiveDateTime",
    "effectivePeriod",
    "issued",
    "performer",
    "resultsInterpreter",
    "specimen",
    "result",
    "imagingStudy",
    "media",
    "conclusion",
    "conclusionCode",
    "presentedForm",
];

const IMAGING_STUDY: &[&str] = &[
    "identifier",
    "status",
    "modality",
    "subject",
    "encounter",
    "started",
    "basedOn",
    "referrer",
    "interpreter",
    "endpoint",
    "numberOfSeries",
    "numberOfInstances",
    "procedureReference",
    "procedureCode",
    "location",
    "reasonCode",
    "reasonReference",
    "note",
    "description",
    "series",
];

const CHARGE_ITEM: &[&str] = &[
    "identifier",
    "definitionUri",
    "definitionCanonical",
    "status",
    "partOf",
    "code",
    "subject",
    "context",
    "occurrenceDateTime",
    "occurrencePeriod",
    "occurrenceTiming",
    "performer",
    "performingOrganization",
    "requestingOrganization",
    "costCenter",
    "quantity",
    "bodysite",
    "factorOverride",
    "priceOverride",
    "overrideReason",
    "enterer",
    "enteredDate",
    "reason",
    "service",
    "productReference",
    "productCodeableConcept",
    "account",
    "note",
    "supportingInformation",
];

/// The type's own top-level elements (without the DomainResource ones);
/// `None` for a type medbus does not accept.
fn own_elements(resource_type: &str) -> Option<&'static [&'static str]> {
    Some(match resource_type {
        "Patient" => PATIENT,
        "Encounter" => ENCOUNTER,
        "ServiceRequest" => SERVICE_REQUEST,
        "Observation" => OBSERVATION,
        "DiagnosticReport" => DIAGNOSTIC_REPORT,
        "ImagingStudy" => IMAGING_STUDY,
        "ChargeItem" => CHARGE_ITEM,
        _ => return None,
    })
}

/// True when `name` is an R4 top-level element of `resource_type`. A
/// primitive's extension sibling (`_birthDate`) counts as its element.
pub fn is_top_level(resource_type: &str, name: &str) -> bool {
    let name = name.strip_prefix('_').unwrap_or(name);
    DOMAIN_RESOURCE.contains(&name) || own_elements(resource_type).is_some_and(|own| own.contains(&name))
}

/// The elements R4 requires (cardinality 1..1) of each supported type, plus
/// what medbus itself requires to make an event, with the reason.
pub fn required(resource_type: &str) -> &'static [(&'static str, Option<&'static str>)] {
    // Every event carries its patient: without a subject there is none.
    const NEEDS_PATIENT: Option<&str> = Some("medbus requires the subject: every event carries its patient");
    match resource_type {
        "Encounter" => &[("status", None), ("class", None), ("subject", NEEDS_PATIENT)],
        "ServiceRequest" => &[("status", None), ("intent", None), ("subject", None)],
        "Observation" => &[("status", None), ("code", None), ("subject", NEEDS_PATIENT)],
        "DiagnosticReport" => &[("status", None), ("code", None), ("subject", NEEDS_PATIENT)],
        "ChargeItem" => &[("status", None), ("code", None), ("subject", None)],
        "ImagingStudy" => &[("status", None), ("subject", None)],
        _ => &[],
    }
}

/// Choice elements (`x[x]`) of each supported type: at most one of each group.
pub fn choices(resource_type: &str) -> &'static [(&'static str, &'static [&'static str])] {
    match resource_type {
        "Patient" => &[
            ("deceased[x]", &["deceasedBoolean", "deceasedDateTime"]),
            ("multipleBirth[x]", &["multipleBirthBoolean", "multipleBirthInteger"]),
        ],
        "ServiceRequest" => &[
            ("quantity[x]", &["quantityQuantity", "quantityRatio", "quantityRange"]),
            (
                "occurrence[x]",
                &["occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"],
            ),
            ("asNeeded[x]", &["asNeededBoolean", "asNeededCodeableConcept"]),
        ],
        "Observation" => &[
            (
                "effective[x]",
                &[
                    "effectiveDateTime",
                    "effectivePeriod",
                    "effectiveTiming",
                    "effectiveInstant",
                ],
            ),
            (
                "value[x]",
                &[
                    "valueQuantity",
                    "valueCodeableConcept",
                    "valueString",
                    "valueBoolean",
                    "valueInteger",
                    "valueRange",
                    "valueRatio",
                    "valueSampledData",
                    "valueTime",
                    "valueDateTime",
                    "valuePeriod",
                ],
            ),
        ],
        "DiagnosticReport" => &[("effective[x]", &["effectiveDateTime", "effectivePeriod"])],
        "ChargeItem" => &[
            (
                "occurrence[x]",
                &["occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"],
            ),
            ("product[x]", &["productReference", "productCodeableConcept"]),
        ],
        _ => &[],
    }
}

/// Element names of the R4 datatypes and of the backbone elements the
/// canonical model reads, as one set. A nested name the canonical structs do
/// not model is accepted when it is in here: it is valid R4 somewhere, and
/// checking it against its exact datatype would need the whole specification.
const NESTED: &[&str] = &[
    // Element, BackboneElement.
    "id",
    "extension",
    "modifierExtension",
    // Extension.
    "url",
    // Identifier.
    "use",
    "type",
    "system",
    "value",
    "period",
    "assigner",
    // HumanName.
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    // Address.
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
    // ContactPoint.
    "rank",
    // Coding, CodeableConcept.
    "coding",
    "version",
    "code",
    "display",
    "userSelected",
    // Reference.
    "reference",
    "identifier",
    // Period.
    "start",
    "end",
    // Quantity, Money, Range, Ratio.
    "comparator",
    "unit",
    "currency",
    "low",
    "high",
    "numerator",
    "denominator",
    // Annotation.
    "authorReference",
    "authorString",
    "time",
    // Attachment.
    "contentType",
    "language",
    "data",
    "size",
    "hash",
    "title",
    "creation",
    // Meta, Narrative.
    "versionId",
    "lastUpdated",
    "source",
    "profile",
    "security",
    "tag",
    "status",
    "div",
    // Timing.
    "event",
    "repeat",
    // SampledData.
    "origin",
    "factor",
    "lowerLimit",
    "upperLimit",
    "dimensions",
    // Encounter.participant, .hospitalization, .location.
    "individual",
    "preAdmissionIdentifier",
    "admitSource",
    "reAdmission",
    "dietPreference",
    "specialCourtesy",
    "specialArrangement",
    "destination",
    "dischargeDisposition",
    "location",
    "physicalType",
    // Observation.referenceRange.
    "appliesTo",
    "age",
    // Patient.link.
    "other",
];

/// True when `name` is an element of some R4 datatype (or of a backbone
/// element medbus models); `_name` counts as `name`.
pub fn is_nested(name: &str) -> bool {
    NESTED.contains(&name.strip_prefix('_').unwrap_or(name))
}

/// Every R4 resource type: what a reference `Type/id` may name.
const R4_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// True when `name` is an R4 resource type.
pub fn is_resource_type(name: &str) -> bool {
    R4_TYPES.contains(&name)
}

/// R4 `Bundle` elements (a Resource, not a DomainResource: no text, contained or extension).
pub const BUNDLE: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "identifier",
    "type",
    "timestamp",
    "total",
    "link",
    "entry",
    "signature",
];

/// R4 `Bundle.entry` elements.
pub const BUNDLE_ENTRY: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "link",
    "fullUrl",
    "resource",
    "search",
    "request",
    "response",
];

/// R4 `Bundle.entry.request` elements.
pub const BUNDLE_REQUEST: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "method",
    "url",
    "ifNoneMatch",
    "ifModifiedSince",
    "ifMatch",
    "ifNoneExist",
];

/// R4 `Bundle.type` codes.
pub const BUNDLE_TYPES: &[&str] = &[
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch",
    "batch-response",
    "history",
    "searchset",
    "collection",
];

/// The datatype of a top-level element, for the elements the canonical
/// structs do not read (they would otherwise be taken unchecked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `boolean`.
    Bool,
    /// `integer`.
    Int,
    /// `decimal`.
    Decimal,
    /// `string`, `markdown`, `uri`, `code`.
    Str,
    /// `uri` 0..*.
    Strs,
    /// `dateTime`, `instant`.
    DateTime,
    /// `Period`.
    Period,
    /// `Quantity`, `Duration`.
    Quantity,
    /// `Identifier` 0..1.
    Identifier,
    /// `CodeableConcept` 0..1.
    Concept,
    /// `CodeableConcept` 0..*.
    Concepts,
    /// `Reference` 0..1.
    Reference,
    /// `Reference` 0..*.
    References,
    /// `Annotation` 0..*.
    Annotations,
}

/// The shape of `name`, a top-level element of `resource_type` the canonical
/// structs do not read (choice elements included); `None` for the others.
/// Only simple datatypes are listed: backbone elements (`contact`,
/// `component`, `series` …) are taken as they are.
pub fn unmodelled(resource_type: &str, name: &str) -> Option<Shape> {
    use Shape::*;
    Some(match (resource_type, name) {
        (_, "implicitRules" | "language") => Str,
        ("Patient", "deceasedBoolean" | "multipleBirthBoolean") => Bool,
        ("Patient", "multipleBirthInteger") => Int,
        ("Patient", "generalPractitioner") => References,
        ("Patient", "managingOrganization") => Reference,
        ("Encounter", "type" | "reasonCode") => Concepts,
        ("Encounter", "priority") => Concept,
        ("Encounter", "episodeOfCare" | "basedOn" | "appointment" | "reasonReference" | "account") => References,
        ("Encounter", "partOf") => Reference,
        ("Encounter", "length") => Quantity,
        ("ServiceRequest", "instantiatesCanonical" | "instantiatesUri") => Strs,
        ("ServiceRequest", "doNotPerform" | "asNeededBoolean") => Bool,
        ("ServiceRequest", "patientInstruction") => Str,
        ("ServiceRequest", "requisition") => Identifier,
        ("ServiceRequest", "category" | "orderDetail" | "locationCode" | "reasonCode" | "bodySite") => Concepts,
        ("ServiceRequest", "performerType" | "asNeededCodeableConcept") => Concept,
        (
            "ServiceRequest",
            "basedOn" | "replaces" | "performer" | "locationReference" | "reasonReference" | "insurance"
            | "supportingInfo" | "specimen" | "relevantHistory",
        ) => References,
        ("ServiceRequest", "occurrenceDateTime") => DateTime,
        ("ServiceRequest", "occurrencePeriod") => Period,
        ("ServiceRequest", "quantityQuantity") => Quantity,
        ("ServiceRequest", "note") => Annotations,
        ("Observation", "category") => Concepts,
        ("Observation", "dataAbsentReason" | "bodySite" | "method") => Concept,
        ("Observation", "partOf" | "focus" | "performer" | "hasMember" | "derivedFrom") => References,
        ("Observation", "specimen" | "device") => Reference,
        ("Observation", "effectivePeriod" | "valuePeriod") => Period,
        ("Observation", "effectiveInstant") => DateTime,
        ("Observation", "valueBoolean") => Bool,
        ("Observation", "valueInteger") => Int,
        ("Observation", "valueTime") => Str,
        ("DiagnosticReport", "category" | "conclusionCode") => Concepts,
        ("DiagnosticReport", "performer" | "resultsInterpreter" | "specimen" | "imagingStudy") => References,
        ("DiagnosticReport", "effectivePeriod") => Period,
        ("DiagnosticReport", "conclusion") => Str,
        ("ImagingStudy", "referrer" | "procedureReference" | "location") => Reference,
        ("ImagingStudy", "interpreter" | "endpoint" | "reasonReference") => References,
        ("ImagingStudy", "reasonCode") => Concepts,
        ("ImagingStudy", "note") => Annotations,
        ("ChargeItem", "definitionUri" | "definitionCanonical") => Strs,
        ("ChargeItem", "partOf" | "service" | "account") => References,
        (
            "ChargeItem",
            "performingOrganization" | "requestingOrganization" | "costCenter" | "enterer" | "productReference",
        ) => Reference,
        ("ChargeItem", "bodysite") => Concepts,
        ("ChargeItem", "productCodeableConcept") => Concept,
        ("ChargeItem", "factorOverride") => Decimal,
        ("ChargeItem", "overrideReason") => Str,
        ("ChargeItem", "note") => Annotations,
        _ => return None,
    })
}
