### The record pages: whose record, the section menu, each section's labels and plain-word statuses, who accessed the record, the apps allowed, and the prepared-download page.

whose-label = Whose record is open
whose-viewing = You are viewing
whose-own = your own record
whose-other = { $name }'s record
whose-died = died { $date }
whose-age = age { $age }

switcher-label = Records you can open:
switcher-open-now = { $relation }, open now

sections-label = Parts of this record

section-summary = Summary
section-access-log = Who accessed it
section-apps = Apps
section-corrections = Corrections
section-disclosures = Disclosures
section-share = Share
correction-accepted = Correction accepted { $date }:
ask-correction = Ask for a correction
section-record = Record
section-empty = Nothing under “{ $section }” is on file.

source-missing = Results from { $source } may be missing right now: that system is not answering. Please check again later.

go-to-records = Go to your records

document-back = Back to the documents
document-untitled = Clinical document

read-it-here = Read it here

home-summary-own = Summary of your record
home-summary-other = Summary of { $name }'s record
home-upcoming = Upcoming visits
home-upcoming-none = No upcoming visits are on file.
home-recent = Recent visits
home-recent-none = No visits are on file.
home-all-visits = All visits
home-in-record = In this record
home-contacts = Care team contacts
home-emergency = If you think this is a medical emergency, call 911. Messages and calls to the care team are not watched around the clock.
home-contact-phone = phone { $phone }
home-contacts-none = No care team contacts are on file.
home-whole-team = The whole care team
home-download = Download a copy
home-download-large = This record is large, so we prepare your copy first. It takes a moment; you can follow its progress and download it when it is ready.
home-prepare-zip = Prepare my download (.zip, a readable summary with data files)
home-prepare-json = Prepare a download for another app (FHIR, .json)
home-download-zip = Download as a readable summary with data files (.zip)
home-download-json = Download for another app (FHIR, .json)
home-privacy = Privacy

access-log-heading = Who accessed this record

care-team-emergency = If you think this is a medical emergency, call 911.
care-team-teams = Care teams
care-team-teams-none = No care teams are on file.
care-team-people = Clinicians
care-team-people-none = No clinicians are named in this record.
care-team-organizations = Hospitals, clinics and labs
care-team-organizations-none = No organizations are named in this record.

access-log-intro = Every time someone opens this record — you, people you share it with, apps you allowed, partner organizations or Harbor Health staff — it is written down here. The newest is first.
access-log-caption = Accesses to this record, newest first
access-log-when = When
access-log-who = Who
access-log-what = What
access-log-why = Why
access-log-outcome = Outcome
access-log-from = From (network address)
access-log-none = No one has accessed this record yet.
access-log-unrecognized = See something you don't recognize? Call Harbor Health Information Management at 360-555-0100.

apps-intro = These apps can read health records through your account. Revoking an app stops it at once.
apps-allowed-used = Allowed { $granted } · last used { $used }
apps-allowed-unused = Allowed { $granted } · not used yet
apps-it-can = It can:

results-trends = Trends
results-trends-help = Tests done more than once. The shaded band is the usual (reference) range; red dots are outside it.
results-reports = Reports
results-reports-none = No reports are on file.
results-all = All results
results-caption = Results, newest first
results-col-test = Test
results-col-result = Result
results-col-range = Usual range
results-col-flag = Flag
results-col-date = Date
results-col-from = From
results-none = No results are on file.

job-title = Your download
job-waiting = Preparing your download… { $done } of { $steps } steps done. It is waiting for its turn and will start shortly.
job-working = Preparing your download… { $done } of { $steps } steps done. Now: { $now }.
job-ready = Your download is ready.
job-download-file = Download { $what } ({ $kind }, { $size })
job-ready-help = It holds { $count } items from the record. You can download it until { $expires } (UTC); after that it is deleted and you can prepare a new one. It is a copy of health information: keep it private.
job-source-missing = Results from { $source } may be missing from this download: that system was not answering when it was prepared.
job-failed-not-available = We could not prepare this download: this record is not available to you right now.
job-failed = We could not prepare your download. Something went wrong on our side.
job-refresh-help = This page updates by itself every few seconds. You can leave it and come back later: your download will wait for you here.

back-to-record = Back to the record

job-unknown-format = That is not a kind of download we offer. Go back to the record and choose one of its download buttons.
job-too-many-title = Please wait for your other downloads
job-too-many = You already have { $count } downloads being prepared. When one is ready, try again.
job-step-gathering = gathering the record from Harbor Health's systems
job-step-writing = writing the files
job-step-storing = storing your download
job-what-zip = the readable summary with data files
job-what-json = the record for another app

size-mb = { $size } MB
size-kb = { $size } KB
size-bytes = { $size } bytes

download-no-record = There is no such record to download. Go back to your account and choose the record again.

detail-how-to-take-it = How to take it
detail-prescribed-by = Prescribed by
detail-why = Why
detail-why-it-was-stopped = Why it was stopped
detail-reaction = Reaction
detail-risk = Risk
detail-kind = Kind
detail-where = Where
detail-dose = Dose
detail-since = Since
detail-confirmed = Confirmed?
detail-ended = Ended
detail-reason = Reason
detail-with = With
detail-type = Type
detail-written-by = Written by
detail-kept-by = Kept by
detail-members = Members
detail-organization = Organization
detail-qualification = Qualification
detail-phone = Phone
detail-address = Address

item-medication = Medication
item-allergy = Allergy
item-vaccine = Vaccine
item-health-problem = Health problem
item-visit = Visit
item-appointment = Appointment
item-document = Document
item-unnamed = Unnamed

value-given = Given
value-not-yet-confirmed = Not yet confirmed
value-ruled-out = Ruled out
value-office-or-clinic-visit = Office or clinic visit
value-emergency-department = Emergency department
value-hospital-stay = Hospital stay
value-virtual-visit = Virtual visit
value-home-visit = Home visit
value-appointment = Appointment
value-final = Final
value-preliminary = Preliminary
value-corrected = Corrected
value-high-risk-a-reaction-could = High risk: a reaction could be serious

status-active = Active
status-inactive = Inactive
status-resolved = Resolved
status-in-remission = In remission
status-came-back = Came back
status-stopped = Stopped
status-completed = Completed
status-on-hold = On hold
status-cancelled = Cancelled
status-planned = Planned
status-booked = Booked
status-in-progress = In progress
status-entered-in-error = Entered in error
status-not-given = Not given
status-draft = Draft
status-unknown = Unknown

section-test-results = Test results
section-medications = Medications
section-allergies = Allergies
section-immunizations = Immunizations
section-health-problems = Health problems
section-visits = Visits
section-documents = Documents
section-care-team = Care team
section-other-records = Other records

item-care-team = Care team

file-open-the-pdf = Open the PDF
file-save-the-document-c-cda = Save the document (C-CDA, XML)
file-open-the-note = Open the note
file-open-the-image = Open the image
file-save-the-document = Save the document

value-yes = Yes
value-no = No
value-no-value = No value
value-see-report = See report
value-high = High
value-critically-high = Critically high
value-low = Low
value-critically-low = Critically low
value-abnormal = Abnormal
value-critically-abnormal = Critically abnormal
value-normal = Normal
value-positive = Positive
value-negative = Negative
value-detected = Detected
value-not-detected = Not detected
value-result = Result
value-report = Report

status-final = Final
status-corrected = Corrected
status-preliminary = Preliminary

range-between = { $low } to { $high }
range-up-to = up to { $high }
range-at-least = at least { $low }

chart-point = { $value } { $unit } on { $date }
chart-title = { $name } over time: { $points }

log-role-patient = the patient
log-role-mother = mother
log-role-father = father
log-role-parent = parent
log-role-guardian = guardian
log-role-caregiver = caregiver
log-role-staff = Harbor Health staff
log-role-partner = a partner organization
log-who-you-lower = you
log-who-you = You
log-who-person = { $name } ({ $role })
log-who-someone = someone with access ({ $role })
log-who-app-allowed-by = The app “{ $app }”, allowed by { $person }
log-who-app = The app “{ $app }”
log-who-staff = Harbor Health staff
log-who-share-link = Someone with your share link “{ $purpose }”
log-who-partner-named = Partner organization “{ $name }” (health information exchange)
log-who-partner = A partner organization (health information exchange)
log-who-demo = { $role } (demonstration access)
log-type-observation = test results and measurements
log-type-report = test and imaging reports
log-type-condition = health problems
log-type-medication = medications
log-type-allergy = allergies
log-type-immunization = immunizations
log-type-visit = visits
log-type-document = documents
log-type-care-team = the care team
log-type-care-plan = care plans
log-type-goal = health goals
log-type-procedure = procedures
log-type-patient = name and contact details
log-type-related-person = family members on file
log-type-audit-event = the access log
log-type-provenance = where items came from
log-type-places = clinicians and places
log-what-home = Opened the record's home page
log-what-access-log = Looked at who accessed the record (this page)
log-what-apps = Looked at the apps allowed to read the record
log-what-share-page = Looked at the record's share links
log-what-section = Viewed the “{ $section }” page
log-what-page = Viewed a page of the record
log-what-read-one = Read one item of the record
log-what-read = Read one item: { $kind }
log-what-search = Looked up { $kind }
log-what-everything = Retrieved the whole record
log-what-download = Downloaded a copy of the record
log-what-export = Exported the record (bulk data)
log-what-explain = Reviewed the privacy decisions for the record
log-what-release = Released a result that was on hold
log-what-share = Made a share link of the record
log-what-share-view = Opened a share link of the record
log-what-share-view-as = Opened a share link of the record (as “{ $recipient }”)
log-purpose-treat = Treatment
log-purpose-etreat = Emergency treatment
log-purpose-btg = Emergency access (break the glass)
log-purpose-payment = Payment
log-purpose-operations = Health care operations
log-purpose-research = Research
log-purpose-public-health = Public health
log-outcome-allowed = Allowed
log-outcome-nothing-shown = Nothing shown
log-outcome-refused = Refused
log-outcome-failed = Did not complete

relation-self = you
relation-child = your child
relation-guardianship = in your guardianship
relation-care = in your care
relation-family = a family member
record-unnamed = Patient record

kind-explanation-of-benefit = Explanation of benefit
kind-claim = Claim
kind-coverage = Coverage
kind-eligibility-request = Coverage eligibility request
kind-eligibility-response = Coverage eligibility response
kind-imaging-study = Imaging study
kind-procedure = Procedure
kind-care-plan = Care plan
kind-goal = Goal
kind-medication-dispense = Medication dispense
kind-medication-administration = Medication administration
kind-related-person = Related person
kind-device = Device
kind-service-request = Service request
kind-questionnaire-response = Questionnaire response

## Corrections (/records/{link}/corrections)

corrections-intro = If something in this record is wrong or incomplete, you can ask Harbor Health to correct it. Health Information Management answers within 60 days (once, they may take 30 more days and tell you why). The record itself is not changed here: an accepted correction is shown beside the item.
corrections-an-item = An item of the record
corrections-about = About:
corrections-what = What should be corrected, and how?
corrections-send = Send the request
corrections-yours = Your requests
corrections-own-words = A correction in your own words
corrections-sent = Sent { $date }
corrections-accepted = Accepted
corrections-denied = Denied
corrections-waiting = Waiting for an answer, due by { $date }
corrections-overdue = overdue
corrections-extended = Health Information Management needs 30 more days: { $reason }
corrections-answer = Answer ({ $date }): { $reason }
corrections-disagreement = Your statement of disagreement: { $text }
corrections-may-disagree = You may file a statement of disagreement; it is kept with the record and sent with it.
corrections-file = File the statement
corrections-none = No requests yet.

## Disclosures (/records/{link}/disclosures, its printable copy and table)

disclosures-title = Disclosures of your record
disclosures-accounting = Accounting of disclosures
disclosures-intro = Everyone outside your own use who received data from this record since { $since }: partner organizations, apps and people who opened a share link. Your own visits and Harbor Health's use for your care and its operations are not disclosures and are not listed (they are in “Who accessed it”).
disclosures-printable = Printable copy
disclosures-as-fhir = As FHIR AuditEvents
disclosures-caption = Disclosures since { $since }, newest first
disclosures-date = Date
disclosures-recipient = Recipient
disclosures-what = What
disclosures-purpose = Purpose
disclosures-none = No disclosures since { $since }.
disclosures-record-of = record of { $name }
disclosures-record-of-patient = record of patient { $patient }
disclosures-period = from { $since } to { $today }
disclosures-print-intro = Under 45 CFR 164.528 this lists the disclosures of the record to others: partner organizations, apps and share links. The patient's own access and Harbor Health's use for treatment, payment and operations are not listed.
disclosures-questions = Questions: Harbor Health Information Management, 360-555-0100.

## Share your record (/records/{link}/share and the made link)

share-title = Share your record
share-intro = Make a link (a SMART Health Link, with a QR code) to a copy of parts of this record as you see it now — for a school, a camp or a new doctor. Whoever has the link (and its passcode, if you set one) can read that copy until it expires or you revoke it. Every time it is opened shows here and in “Who accessed it”.
share-what = What to share
share-label = A name for the link (the recipient sees it)
share-label-example = For school
share-days = The link works for
share-passcode = Passcode (optional, 4 or more characters; tell it to the recipient separately)
share-make = Make the link
share-links = Links you have made
share-works-until = works until { $date }
share-has-passcode = passcode
share-opened-times = Opened { $count } { $count ->
        [one] time
       *[other] times
    }
share-revoke = Revoke “{ $label }”
share-none = You have not shared this record.
section-procedures = Procedures
section-everything-you-see = Everything you can see
share-for-1-day = 1 day
share-for-1-week = 1 week
share-for-30-days = 30 days
share-for-3-months = 3 months
share-for-1-year = 1 year
share-status-revoked = revoked
share-status-expired = expired
share-status-locked = locked (too many wrong passcodes)
share-made-title = Your share link
share-made-ready = Your share link is ready
share-made-give = Give this link or QR code to the person you are sharing with.
share-made-only-now = It is shown only now
share-made-copy = : Harbor Health does not keep it, so copy it or save the QR code before leaving this page.
share-made-items = { $count } { $count ->
        [one] item
       *[other] items
    }
share-made-viewer-link = Link to open in a web browser
share-made-shlink = The same link for SMART Health Links apps
share-made-back = Back to sharing

## A shared record, opened by its recipient (/share/view)

share-viewer-title = Shared health record: { $label }
share-viewer-a-patient = a Harbor Health patient
share-viewer-intro = Part of the health record of { $name }, shared through Harbor Health on { $date }: the record as it was then, without later updates. This visit is recorded, and the patient can see it.
share-viewer-none = None shared.
share-viewer-results-caption = Results, newest first
share-viewer-test = Test
share-viewer-result = Result
share-viewer-range = Usual range
share-viewer-open = Open a shared health record
share-viewer-open-intro = Someone shared part of their health record with you as a link (a SMART Health Link), perhaps as a QR code. Paste the link here, or open it with a SMART Health Links app.
share-viewer-link = The share link
share-viewer-recipient = Your name or organization (the patient will see it)
share-viewer-passcode = Passcode, if you were given one
share-viewer-button = Open the record

## Share links: why a link was not made or not opened

share-problem-label = give the link a label of 1 to 80 characters (e.g. “For school”)
share-problem-passcode = a passcode has 4 to 64 characters (or leave it out)
share-problem-past = the link must expire in the future
share-problem-too-long = a link may live at most { $days } days
share-problem-recipient = name the recipient (`recipient`: who is opening the link)
share-problem-days = Choose how long the link works.
share-problem-no-section = choose at least one section to share
share-problem-unknown-section = `{ $section }` is not a section that can be shared
share-viewer-not-a-link = That is not a share link. Paste the whole link you were given (it contains “shlink:/”).
share-viewer-not-ours = This link is not from this site, or it is damaged. Open it in a SMART Health Links viewer, or ask for a new one.
share-viewer-wrong-passcode = The passcode is not right ({ $left } { $left ->
        [one] attempt
       *[other] attempts
    } left).
share-viewer-gone = This share link is not valid any more: it may have expired or been revoked. Ask the person who shared it for a new one.
share-viewer-damaged = This link is damaged: its key does not open the record. Ask for a new one.

## Corrections: why a request or statement was not taken

corrections-what-change = the requested change
corrections-what-statement = the statement of disagreement
corrections-problem-empty = { $what } is empty
corrections-problem-too-long = { $what } is { $count } characters long; at most { $max } are accepted
corrections-problem-once = a statement can be filed once, after a denial
corrections-problem-too-many = { $count } requests are already waiting for an answer. Health Information Management will answer them first.

## Disclosures: who received the data, and why

disclosures-only-patient-title = Only for the patient
disclosures-only-patient = The list of disclosures is given to the patient. As a personal representative you can ask Harbor Health Information Management for it: 360-555-0100.
disclosure-to-partner = { $name } (partner organization)
disclosure-to-partner-named = Partner organization “{ $name }”
disclosure-to-a-partner = A partner organization
disclosure-to-share-link = Someone who opened a share link
disclosure-the-app = The app “{ $name }”
disclosure-an-app = An app
disclosure-allowed-by-you = { $app }, allowed by you
disclosure-allowed-by-the-patient = { $app }, allowed by the patient
disclosure-allowed-by-a-proxy = { $app }, allowed by a person with access to the record
disclosure-allowed-by-someone = { $app }, allowed by someone with access
disclosure-purpose-shared = Shared by the patient: “{ $label }”
disclosure-purpose-app = At the request of the person who allowed the app
