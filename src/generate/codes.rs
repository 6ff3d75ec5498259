//! The vocabulary of the generated population: invented names and places, and real codes
//! (LOINC, SNOMED CT, ICD-10-CM, RxNorm, CVX, CPT) with the reference ranges of the labs.
//! The sensitive codes are ones `config/labels.toml` recognizes, so the labeller must label
//! what the generator marks. Tables only; no logic.

pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const V2_0074: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
pub const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";

/// Given names that are no one's nickname (the matcher's nickname table maps nicknames to
/// these, never the other way round).
pub const FEMALE_GIVEN: &[&str] = &[
    "Elizabeth",
    "Katherine",
    "Margaret",
    "Susan",
    "Jennifer",
    "Patricia",
    "Abigail",
    "Rebecca",
    "Guadalupe",
    "María",
    "Ana",
    "Sofia",
    "Grace",
    "Linda",
    "Sarah",
    "Emily",
    "Olivia",
    "Maya",
    "Priya",
    "Mei",
    "Aisha",
    "Fatima",
    "Hannah",
    "Chloe",
    "Laura",
    "Nora",
    "Ruth",
    "Julia",
    "Keiko",
    "Amara",
];

pub const MALE_GIVEN: &[&str] = &[
    "Robert",
    "William",
    "James",
    "Michael",
    "Thomas",
    "Richard",
    "Anthony",
    "Daniel",
    "Joseph",
    "Samuel",
    "Alexander",
    "Christopher",
    "Matthew",
    "Nicholas",
    "Stephen",
    "Edward",
    "Andrew",
    "Manuel",
    "Marcus",
    "Noah",
    "Ethan",
    "David",
    "Carlos",
    "Omar",
    "Wei",
    "Arjun",
    "Kenji",
    "Liam",
    "Lucas",
    "Harold",
];

/// (given name, nickname) pairs the matcher knows.
pub const NICKNAMES: &[(&str, &str)] = &[
    ("Robert", "Bob"),
    ("Elizabeth", "Liz"),
    ("William", "Bill"),
    ("James", "Jim"),
    ("Katherine", "Kate"),
    ("Michael", "Mike"),
    ("Thomas", "Tom"),
    ("Richard", "Rick"),
    ("Margaret", "Maggie"),
    ("Anthony", "Tony"),
    ("Daniel", "Danny"),
    ("Joseph", "Joe"),
    ("Samuel", "Sam"),
    ("Alexander", "Alex"),
    ("Christopher", "Chris"),
    ("Matthew", "Matt"),
    ("Nicholas", "Nick"),
    ("Stephen", "Steve"),
    ("Susan", "Sue"),
    ("Jennifer", "Jen"),
    ("Edward", "Ted"),
    ("Andrew", "Andy"),
    ("Patricia", "Trish"),
    ("Abigail", "Abby"),
    ("Rebecca", "Becky"),
    ("Manuel", "Manny"),
    ("Guadalupe", "Lupe"),
];

pub const MIDDLE: &[&str] = &["A", "J", "M", "L", "R", "E", "K", "S"];

pub const FAMILIES: &[&str] = &[
    "Martinez",
    "Nguyen",
    "Johnson",
    "O'Brien",
    "Reyes",
    "Whitfield",
    "Rodriguez",
    "Kim",
    "Bennett",
    "Jensen",
    "Okafor",
    "Park",
    "Brown",
    "Carter",
    "Smith",
    "García",
    "Lopez",
    "Patel",
    "Chen",
    "Wong",
    "Singh",
    "Haddad",
    "Novak",
    "Müller",
    "Rossi",
    "Silva",
    "Tanaka",
    "Sato",
    "Ali",
    "Mensah",
    "Adeyemi",
    "Kowalski",
    "Ivanova",
    "Larsen",
    "Dubois",
    "Murphy",
    "Walsh",
    "Hughes",
    "Foster",
    "Hayes",
    "Nuñez",
    "Castillo",
    "Ortega",
    "Morales",
    "Flores",
    "Rivera",
    "Cohen",
    "Levi",
    "Abebe",
    "Tran",
    "Le",
    "Pham",
    "Yamamoto",
    "Fischer",
    "Schmidt",
    "Berg",
    "Lindqvist",
    "Moreau",
    "Bianchi",
    "Romero",
];

pub const STREETS: &[&str] = &[
    "Alder St",
    "Gull Point Dr",
    "Madrona Ln",
    "Ferry Landing Rd",
    "Bluff Rd",
    "Sandpiper Ct",
    "Tidewater Ln",
    "Lighthouse Rd",
    "Spruce St",
    "Quarry Rd",
    "Cannery Row",
    "Harbor St",
    "Orchard St",
    "Kelp Bed Way",
    "Pinecrest Ct",
    "Ridgecrest Ave",
];

/// (city, postal code)
pub const CITIES: &[(&str, &str)] =
    &[("Harborview", "98390"), ("Port Sorrel", "98412"), ("Bayview", "98401"), ("Cedar Point", "98422")];

/// A laboratory test: code, name, UCUM unit, reference range and the values drawn.
pub struct LabTest {
    pub loinc: &'static str,
    pub display: &'static str,
    pub unit: &'static str,
    pub low: f64,
    pub high: f64,
    pub draw: (f64, f64),
    pub decimals: usize,
}

const fn t(
    loinc: &'static str,
    display: &'static str,
    unit: &'static str,
    low: f64,
    high: f64,
    draw: (f64, f64),
    decimals: usize,
) -> LabTest {
    LabTest { loinc, display, unit, low, high, draw, decimals }
}

/// A panel: its report code and its tests.
pub struct Panel {
    pub loinc: &'static str,
    pub display: &'static str,
    pub tests: &'static [LabTest],
}

pub const POTASSIUM: usize = 3;

pub const BMP: Panel = Panel {
    loinc: "51990-0",
    display: "Basic metabolic panel - Blood",
    tests: &[
        t("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70.0, 99.0, (65.0, 140.0), 0),
        t("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3, (0.5, 1.6), 2),
        t("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136.0, 145.0, (133.0, 147.0), 0),
        t("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, (3.3, 5.4), 1),
        t("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98.0, 107.0, (96.0, 109.0), 0),
        t("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22.0, 29.0, (20.0, 31.0), 0),
        t("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7.0, 20.0, (6.0, 26.0), 0),
    ],
};

pub const CBC: Panel = Panel {
    loinc: "58410-2",
    display: "CBC panel - Blood by Automated count",
    tests: &[
        t("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.5, 11.0, (3.8, 12.5), 1),
        t("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5, (10.8, 17.9), 1),
        t("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 36.0, 50.0, (33.0, 52.0), 1),
        t("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150.0, 400.0, (130.0, 430.0), 0),
    ],
};

pub const LIPIDS: Panel = Panel {
    loinc: "57698-3",
    display: "Lipid panel with direct LDL - Serum or Plasma",
    tests: &[
        t("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 0.0, 200.0, (140.0, 260.0), 0),
        t("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 0.0, 150.0, (60.0, 240.0), 0),
        t("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40.0, 100.0, (32.0, 80.0), 0),
        t(
            "18262-6",
            "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
            "mg/dL",
            0.0,
            100.0,
            (60.0, 190.0),
            0,
        ),
    ],
};

pub const HBA1C: Panel = Panel {
    loinc: "4548-4",
    display: "Hemoglobin A1c/Hemoglobin.total in Blood",
    tests: &[t("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, (6.4, 9.6), 1)],
};

pub const TSH: Panel = Panel {
    loinc: "3016-3",
    display: "Thyrotropin [Units/volume] in Serum or Plasma",
    tests: &[t("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.4, 4.0, (0.8, 7.5), 2)],
};

/// A chronic problem: ICD-10-CM, SNOMED CT, and its usual medication (RxNorm).
pub struct Problem {
    pub icd: &'static str,
    pub display: &'static str,
    pub snomed: &'static str,
    pub med: Option<(&'static str, &'static str)>,
}

pub const HYPERTENSION: Problem = Problem {
    icd: "I10",
    display: "Essential (primary) hypertension",
    snomed: "38341003",
    med: Some(("314076", "lisinopril 10 MG Oral Tablet")),
};
pub const DIABETES: Problem = Problem {
    icd: "E11.9",
    display: "Type 2 diabetes mellitus without complications",
    snomed: "44054006",
    med: Some(("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet")),
};
pub const HYPERLIPIDEMIA: Problem = Problem {
    icd: "E78.5",
    display: "Hyperlipidemia, unspecified",
    snomed: "55822004",
    med: Some(("312961", "simvastatin 20 MG Oral Tablet")),
};
pub const ASTHMA: Problem = Problem {
    icd: "J45.30",
    display: "Mild persistent asthma, uncomplicated",
    snomed: "195967001",
    med: Some(("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler")),
};
pub const HYPOTHYROIDISM: Problem = Problem {
    icd: "E03.9",
    display: "Hypothyroidism, unspecified",
    snomed: "40930008",
    med: Some(("966222", "levothyroxine sodium 0.05 MG Oral Tablet")),
};
pub const BACK_PAIN: Problem = Problem {
    icd: "M54.50",
    display: "Low back pain, unspecified",
    snomed: "279039007",
    med: Some(("849574", "naproxen sodium 220 MG Oral Tablet")),
};
pub const OSTEOPOROSIS: Problem = Problem {
    icd: "M81.0",
    display: "Age-related osteoporosis without current pathological fracture",
    snomed: "64859006",
    med: Some(("904419", "alendronic acid 10 MG Oral Tablet")),
};

/// Sensitive problems (the labeller must recognize every code here).
pub const HIV: Problem = Problem {
    icd: "B20",
    display: "Human immunodeficiency virus [HIV] disease",
    snomed: "86406008",
    med: Some(("1999667", "bictegravir 50 MG / emtricitabine 200 MG / tenofovir alafenamide 25 MG Oral Tablet")),
};
pub const DEPRESSION: Problem = Problem {
    icd: "F32.1",
    display: "Major depressive disorder, single episode, moderate",
    snomed: "832007",
    med: Some(("310385", "fluoxetine 20 MG Oral Capsule")),
};
pub const ADOLESCENT_DEPRESSION: Problem =
    Problem { icd: "F32.A", display: "Depression, unspecified", snomed: "35489007", med: None };
pub const ANXIETY: Problem =
    Problem { icd: "F41.1", display: "Generalized anxiety disorder", snomed: "21897009", med: None };
pub const OPIOID_USE: Problem = Problem {
    icd: "F11.20",
    display: "Opioid dependence, uncomplicated",
    snomed: "75544000",
    med: Some(("1010600", "buprenorphine 2 MG / naloxone 0.5 MG Sublingual Film")),
};
pub const ALCOHOL_USE: Problem = Problem {
    icd: "F10.20",
    display: "Alcohol dependence, uncomplicated",
    snomed: "66590003",
    med: Some(("1483744", "naltrexone hydrochloride 50 MG Oral Tablet")),
};
pub const CONTRACEPTION: Problem = Problem {
    icd: "Z30.011",
    display: "Encounter for initial prescription of contraceptive pills",
    snomed: "",
    med: Some(("748962", "Camila 28 Day Pack")),
};
pub const PREGNANCY: Problem =
    Problem { icd: "Z32.01", display: "Encounter for pregnancy test, result positive", snomed: "77386006", med: None };
pub const CHLAMYDIA: Problem = Problem {
    icd: "A56.00",
    display: "Chlamydial infection of lower genitourinary tract, unspecified",
    snomed: "105629000",
    med: None,
};
pub const ABUSE: Problem =
    Problem { icd: "T74.11XA", display: "Adult physical abuse, confirmed, initial encounter", snomed: "", med: None };
pub const ABUSE_HISTORY: Problem =
    Problem { icd: "Z91.410", display: "Personal history of adult physical and sexual abuse", snomed: "", med: None };
pub const BRCA: Problem =
    Problem { icd: "Z15.01", display: "Genetic susceptibility to malignant neoplasm of breast", snomed: "", med: None };

/// Vaccines (CVX).
pub const FLU: (&str, &str) = ("150", "Influenza, injectable, quadrivalent, preservative free");
pub const COVID: (&str, &str) =
    ("208", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose");
pub const TDAP: (&str, &str) = ("115", "Tdap");
pub const ZOSTER: (&str, &str) = ("187", "zoster recombinant");
pub const CHILDHOOD: &[(&str, &str)] =
    &[("20", "DTaP"), ("10", "IPV"), ("03", "MMR"), ("21", "varicella"), ("83", "Hep A, ped/adol, 2 dose")];
pub const ADOLESCENT: &[(&str, &str)] = &[("115", "Tdap"), ("114", "meningococcal MCV4P"), ("165", "HPV9")];

/// Allergies: SNOMED CT finding, category, criticality.
pub const ALLERGIES: &[(&str, &str, &str, &str)] = &[
    ("91936005", "Allergy to penicillin", "medication", "high"),
    ("91935009", "Allergy to peanut", "food", "high"),
    ("300916003", "Latex allergy", "environment", "low"),
    ("300913006", "Shellfish allergy", "food", "high"),
];

/// Imaging studies: LOINC, CPT, title.
pub const STUDIES: &[(&str, &str, &str)] = &[
    ("36643-5", "71046", "XR Chest 2 Views"),
    ("24627-2", "71250", "CT Chest"),
    ("24606-6", "77067", "MG Breast Screening"),
    ("18748-4", "72100", "XR Lumbar spine 2 or 3 Views"),
    ("18748-4", "76536", "US Thyroid"),
    ("18748-4", "76770", "US Retroperitoneum"),
];

pub const IMPRESSIONS: &[&str] = &[
    "No acute abnormality.",
    "Stable appearance compared with the prior study.",
    "Mild degenerative change. No acute finding.",
    "Findings are benign. Routine follow-up.",
];

pub const NOTE_LINES: &[&str] = &[
    "Patient seen for follow-up. Doing well overall.",
    "Reviewed medications and recent results with the patient.",
    "Discussed diet, exercise and sleep. Questions answered.",
    "Vital signs reviewed. Plan unchanged; return in three months.",
    "Counselled on preventive care and vaccinations.",
];
