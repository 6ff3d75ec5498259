### The front page, sign-in, registration, e-mail confirmation, enrollment, the account page and an app's authorization (record choice, consent, what each permission allows).

home-title = Welcome
home-heading = Your health record, in one place
home-intro = This is a patient access gateway. It gathers your record from the hospital's systems into one view, and lets you — and the people and apps you allow — see it, download it and share it.
home-developers = For app developers
home-developers-intro = Apps connect with SMART App Launch and read the record through a FHIR R4 API.
home-fhir-base = FHIR base URL
home-capabilities = Capabilities
home-smart-configuration = SMART configuration

login-app-wants = { $app } wants to connect to your Harbor Health record. Sign in to continue.
login-or = or
login-new-here = New here?
login-signed-out = You were signed out because you were away for a while (or signed in too long). Please sign in again.

field-username = User name (your e-mail address)
field-password = Password
field-display-name = Your name
field-new-password = Password (at least { $min } characters)
field-activation-code = Activation code
field-birth-date = Date of birth
field-mrn = Medical record number (MRN)
field-family-name = Last name

register-heading = Create an account
register-submit = Create account
register-have-account = Already have an account?
register-refused = We couldn't create that account. If you already have one, sign in instead.
register-username-invalid = Your user name is your e-mail address (like name@example.org): we send a link to confirm it.
register-name-missing = Tell us your name.

password-too-short = Choose a password of at least { $min } characters.
password-too-long = That password is too long.
password-too-common = That password is too easy to guess. Choose another one.

account-error-sign-in = That user name and password don't match our records, or the account is locked for a while after too many attempts.
account-error-verification = We couldn't verify those details. Check them against a letter or bill from Harbor Health and try again; after several attempts the account is locked for a while.
account-error-code-only = Enter the activation code Harbor Health gave you (at the front desk or on your visit summary) with your date of birth.
account-error-email-not-verified = Confirm your e-mail address first: open the link in the mail we sent when you created your account, or ask for a new mail below. Nothing was connected.
account-error-too-many-mails = We have sent several mails in the last hour. Please wait a while and check your inbox (and spam folder).

connect-record = Connect your record

enroll-confirm-first = First, confirm your e-mail address
enroll-confirm-first-help = We sent a link to the e-mail address you signed up with. Open it to confirm the address; then come back here to connect your record. No mail? Check your spam folder, or ask for a new one.
enroll-resend = Send the mail again
enroll-resent = We sent a new link to your e-mail address.
enroll-with-code = With an activation code
enroll-with-code-help = Harbor Health gives you a one-time activation code at the front desk or on your visit summary. Enter it with your date of birth.
enroll-submit = Connect my record
enroll-with-mrn = With your medical record number
enroll-with-mrn-help = No code? Enter the details from a letter, bill or visit summary.
enroll-help = No code, or it doesn't work? Harbor Health Information Management can help: 360-555-0100. They also set up access for parents, guardians and caregivers.

verify-confirmed-title = E-mail address confirmed
verify-link-broken-title = Link not valid
verify-confirmed = Your e-mail address is confirmed. You can now connect your health record.
verify-link-broken = This link does not work: it was already used, it has expired, or it was copied incompletely. Sign in and ask for a new mail on the page where you connect your record.

your-account = Your account

account-hello = Hello, { $name }

records-you-can-open = Records you can open

account-no-record = Your account is not connected to a record yet.

account-proxies-link = Who can see your record
account-notices-link = Mails we send you
apps-allowed = Apps you have allowed
apps-none = You have not allowed any apps.

account-app-allowed = allowed { $granted }
account-app-allowed-used = allowed { $granted }, last used { $used }

revoke-app = Revoke access for { $app }

records-title = Your records
records-heading = Whose record would you like to see?

pick-heading = Whose record?
pick-intro = { $app } will be able to see the record you choose, and no other.
pick-legend = Choose a record
pick-choose-listed = Choose one of the records listed.

consent-title = Allow this app?
consent-heading = Allow { $app }?
consent-intro = { $app } is asking to see { $patient }'s Harbor Health record. Untick anything you do not want to share. You can revoke access at any time.
consent-legend = { $app } will be able to
consent-limits = Some information may not be shared with apps, for example notes written for staff. Apps never see more than you can.
consent-allow = Allow
consent-deny = Don't allow

authorize-bad-redirect = The app's return address is not valid.
authorize-malformed = The authorization request is malformed.
authorize-nothing-pending = There is no app waiting for your approval. Start again from the app.

scope-launch-patient = Know which patient's record you chose
scope-identity = Know who you are (the name on this account)
scope-offline = Keep access when you are not using the app, until you revoke it
scope-online = Keep access while you are using the app
scope-what-labs = lab results
scope-what-vitals = vital signs (blood pressure, weight …)
scope-what-social-history = social history (such as smoking)
scope-what-observations = test results, vital signs and other measurements
scope-what-conditions = health problems and diagnoses
scope-what-medications = medications
scope-what-allergies = allergies
scope-what-immunizations = immunizations
scope-what-encounters = visits and hospital stays
scope-what-documents = clinical notes and documents
scope-what-reports = test and imaging reports
scope-what-procedures = procedures
scope-what-care-plans = care plans
scope-what-goals = health goals
scope-what-care-team = care team
scope-what-patient = name, birth date and contact details
scope-what-related-persons = family members and caregivers on file
scope-what-places = the clinicians and places involved in care
scope-what-provenance = where each record came from
scope-what-everything = the whole health record
scope-read = Read { $what }

## Mails we send you (/account/notices)

notices-title = Mails we send you
notices-saved = Your choices are saved.
notices-intro = These mails never say what is in a record: they only tell you to sign in. Mails about your account's security and about changes to who can see a record are always sent.
notices-legend = Send me a mail when
notices-new-results = there are new results in a record I can open
notices-download-ready = a download I asked for is ready
notices-share-opened = a link I shared is opened
notices-proxy-added = someone becomes a proxy for my record
notices-save = Save
notices-back = Back to your account

## Accepting a proxy invitation (/proxy-invitations/accept)

proxy-accept-title = Accept an invitation
proxy-accept-signed-out-before = Someone invited you to see their health record as their proxy. First
proxy-accept-sign-in = sign in
proxy-accept-or = or
proxy-accept-register = create an account
proxy-accept-signed-out-after = with the e-mail address the invitation was sent to (and confirm it), then open the link in the mail again.
proxy-accept-dead = This invitation can no longer be used: it was already used or cancelled, it has run out, or the date of birth was wrong three times. Ask the person who invited you for a new one.
proxy-accept-other-address = This invitation was sent to another e-mail address. Sign out, then sign in with the address the invitation was sent to.
proxy-accept-wrong-birth-date = That date of birth does not match. You can try { $left } more { $left ->
        [one] time
       *[other] times
    }.
proxy-accept-intro = To accept, enter the date of birth of the person who invited you.
proxy-accept-birth-date = Their date of birth
proxy-accept-button = Accept the invitation

## Who can see your record (/account/proxies)

proxies-title = Who can see your record
proxies-error-invalid = That did not work: { $message }.
proxies-error-not-owner = Only the person whose record it is can invite proxies, from their own account. Parents and guardians of young people are given access by Harbor Health Information Management: 360-555-0100.
proxies-error-not-found = We could not find that proxy or invitation.
proxies-done-invited = We sent the invitation. It works once, for a limited time.
proxies-done-ended = Their access has ended. They were told by mail.
proxies-done-renewed = Their access is renewed.
proxies-done-cancelled = The invitation is cancelled.
proxies-yours = Your proxies
proxies-since = { $relationship }, since { $date }
proxies-ran-out = their access ran out on { $date }
proxies-until = until { $date }
proxies-renew = Renew access for { $name }
proxies-end = End access for { $name }
proxies-none = Nobody else can see your record.
proxies-invite = Invite someone
proxies-invite-intro = They get a mail with a link. To accept, they sign in with that e-mail address and enter your date of birth. They can then see your record as you do, for { $days } days; you can renew or end it here at any time.
proxies-email = Their e-mail address
proxies-relationship = They are your
proxies-rel-spouse = spouse or partner
proxies-rel-parent = parent
proxies-rel-family = family member
proxies-rel-next-of-kin = next of kin
proxies-rel-caregiver = caregiver
proxies-rel-guardian = guardian
proxies-send = Send the invitation
proxies-invitations = Invitations
proxies-sent = { $relationship }, sent { $date }
proxies-waiting = waiting until { $date }
proxies-cancel = Cancel the invitation to { $email }
proxies-state-accepted = accepted
proxies-state-cancelled = cancelled
proxies-state-expired = expired
proxies-state-void = no longer valid (the date of birth was wrong three times)
proxies-ahead = Changes ahead
proxies-ahead-proxy = { $name }: on { $date } they turn { $age }.
proxies-ahead-proxy-ends = Your access to their record ends that day; they can invite you again from their own account.
proxies-ahead-proxy-less = From that day some of their care is private to them, and you see less of their record (for example immunizations, allergies and appointments stay).
proxies-ahead-self = On { $date } you turn { $age }.
proxies-ahead-self-ends = Your parents' or guardians' access to your record ends that day.
proxies-ahead-self-less = From that day some of your care is private to you: your parents or guardians see less of your record.

## Proxies: relationships a proxy may have, and why an invitation was not sent or taken

proxies-rel-mother = mother
proxies-rel-father = father
proxies-problem-date = enter the date of birth as YYYY-MM-DD
proxies-problem-minor = a young person's parents and guardians are given access by the medical records (HIM) desk
proxies-problem-email = give the e-mail address of the person you invite
proxies-problem-own-address = invite someone else: this is your own address
proxies-problem-relationship = choose a relationship: { $codes }
proxies-problem-open = you have { $count } open invitations; cancel one or wait until one is accepted
proxies-problem-own-record = this is your own record
proxies-problem-confirm-first = confirm your e-mail address first (the link in our first mail)
proxies-problem-him-given = this access was given by the medical records (HIM) desk
notices-unknown = `{ $kind }` is not a notice (new-results, download-ready, share-link-opened, proxy-added)

## Authorizing an app: why an app's request is refused on a page

authorize-refused-too-long = The app's request is too long: { $name } may be at most { $max } characters.
authorize-refused-no-client = The app did not say who it is (client_id).
authorize-refused-unknown-app = The app "{ $client }" is not registered with Harbor Health.
authorize-refused-no-redirect = The app did not say where to return (redirect_uri).
authorize-refused-other-redirect = The app asked to return to an address it did not register.
