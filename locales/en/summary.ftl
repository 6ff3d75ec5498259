### The readable summary in the download zip (summary.html).

summary-title = Health record summary — { $name }
summary-heading = Health record summary: { $name }
summary-produced = Produced { $when } by Harbor Health's patient access gateway. Record { $id }.
summary-incomplete = Incomplete:
summary-about-patient = About the patient
summary-col-from = From
summary-no-patient-details = No details about the patient are included.
summary-footer-files = This summary shows the main items of the record. The files beside it in this download (one .ndjson file per kind of item, in FHIR R4 format) hold the same record in full, for apps and other health care providers. “From” names the hospital system each item came from.
summary-footer-private = This file is a copy of health information: keep it private. It is not for emergencies — call 911.
summary-section-problems = Problems
summary-col-problem = Problem
summary-col-status = Status
summary-col-since = Since
summary-empty-problems = No problems are listed.
summary-section-medications = Medications
summary-col-medication = Medication
summary-col-instructions = Instructions
summary-col-prescribed = Prescribed
summary-empty-medications = No medications are listed.
summary-section-allergies = Allergies
summary-col-allergy = Allergy
summary-col-reaction = Reaction
summary-col-criticality = Criticality
summary-empty-allergies = No allergies are listed.
summary-section-immunizations = Immunizations
summary-col-vaccine = Vaccine
summary-col-date = Date
summary-empty-immunizations = No immunizations are listed.
summary-section-results = Test results and measurements
summary-col-test = Test
summary-col-result = Result
summary-col-unit = Unit
summary-col-reference-range = Reference range
summary-col-flag = Flag
summary-empty-results = No results are listed.
summary-section-reports = Reports
summary-col-report = Report
summary-col-conclusion = Conclusion
summary-empty-reports = No reports are listed.
summary-section-visits = Visits
summary-col-visit = Visit
summary-col-reason = Reason
summary-empty-visits = No visits are listed.
summary-section-procedures = Procedures
summary-col-procedure = Procedure
summary-empty-procedures = No procedures are listed.
summary-section-plans = Care plans and goals
summary-col-plan-or-goal = Plan or goal
summary-empty-plans = No care plans or goals are listed.
summary-section-care-team = Care team
summary-col-team = Team
summary-col-members = Members
summary-empty-care-team = No care team is listed.
summary-section-documents = Documents
summary-col-document = Document
summary-col-description = Description
summary-empty-documents = No documents are listed.
summary-fact-name = Name
summary-fact-date-of-birth = Date of birth
summary-fact-sex = Sex
summary-fact-date-of-death = Date of death
summary-fact-record-numbers = Record numbers
summary-fact-address = Address
summary-fact-phone-and-email = Phone and email
summary-this-patient = this patient
summary-missing = Results from { $source } may be missing: the system { $reason }.

## README.txt of the zip (plain text; file and type names stay as they are)

readme-title = Health record download
readme-record = Record: { $id }
readme-produced = Produced: { $when }
readme-contents = What is in this file
readme-summary-file = a readable, printable summary of the record (open it in any web browser)
readme-notice-file = what you need to know about information not shown here
readme-type-file = { $count } FHIR R4 { $type } { $count ->
        [one] resource
       *[other] resources
    }, one JSON object per line
readme-documents = { $count } { $count ->
        [one] document
       *[other] documents
    } (PDF, C-CDA …) exactly as the hospital systems keep them
readme-ndjson =
    The .ndjson files are the record exactly as the gateway serves it to apps (FHIR R4,
    newline-delimited JSON). Each item names the hospital system it came from in
    meta.source and in a meta.tag of system http://portico.example/fhir/CodeSystem/source-system.
readme-left-out = Documents not in this file
readme-left-out-one = { $id }: { $reason }; open it from your record instead
readme-document-gone = the system that holds it no longer has it
readme-document-no-answer = the system that holds it did not answer
readme-document-too-large = too large for this download
readme-incomplete = Incomplete
readme-about = About this record
readme-private = This is a copy of health information: keep it private.
readme-nothing-withheld = Nothing in this record was withheld from this download.
