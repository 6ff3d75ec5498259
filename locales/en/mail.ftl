### The security mails: subjects and plain-text bodies (lines under 76 characters).

mail-verify-subject = Confirm your e-mail address for the patient portal
mail-connected-subject = Your patient portal account was connected to a health record
mail-attempt-subject = Someone tried to connect to your health record
mail-sign-in-subject = New sign-in to your patient portal account
mail-verify-body =
    Hello,

    someone (we hope you) created a patient portal account with this
    e-mail address on { $when }.
    To confirm the address, open this link within { $hours } hours:

    { $link }

    You need a confirmed address before you can connect your health record.
    If you did not create this account, ignore this mail.
mail-connected-body =
    Hello,

    your patient portal account was connected to a health record
    on { $when }. You can see it after signing in:
    { $account }

    If this was not you, sign in and change your password, and call
    the medical records (HIM) desk.
mail-attempt-body =
    Hello,

    on { $when } someone tried to connect another account
    to the health record that your patient portal account is connected to.
    It was not connected; the medical records (HIM) desk will review
    the attempt.

    If that was you or someone you asked, nothing needs to be done.
    Otherwise call the HIM desk. Your account:
    { $account }
mail-sign-in-body =
    Hello,

    your patient portal account was signed in to
    on { $when } from a browser or device
    it had not been used from before.

    If this was not you, sign in and change your password, and call
    the medical records (HIM) desk. Your account:
    { $account }

## The mails about records and proxy access (no patient data: only links to the portal).

mail-choose-notices =
    You can choose which of these mails you get:
    { $notices }
mail-new-results-subject = You have new results in your record
mail-new-results-body =
    Hello,

    you have new results in your record: something new can be seen
    in a health record you open in the patient portal. Sign in to
    see it:
    { $records }
mail-download-ready-subject = Your download is ready
mail-download-ready-body =
    Hello,

    the download you asked for at the patient portal is ready
    ({ $when }).
    Sign in to get it; it is kept for a limited time:
    { $records }
mail-share-opened-subject = A link you shared was opened
mail-share-opened-body =
    Hello,

    a link you made to share a health record was opened
    on { $when }.
    Sign in to see when it was used, or to end the link:
    { $records }
mail-proxy-added-subject = Someone can now see your health record
mail-proxy-added-body =
    Hello,

    on { $when }
    someone was given access to your health record in the patient
    portal, as your proxy. You can see and end their access here:
    { $proxies }

    If you did not expect this, end it there and call the medical
    records (HIM) desk.
mail-proxy-invitation-subject = You are invited to see a health record in the patient portal
mail-proxy-invitation-body =
    Hello,

    someone invited you to see their health record in the patient
    portal, as their proxy. To accept, create an account with this
    e-mail address (or sign in), then open this link within
    { $days } days:

    { $link }

    You will be asked for their date of birth. If you did not expect
    this mail, ignore it: nothing happens without you.
mail-access-changes-subject = Access to a health record changes soon
mail-access-changes-proxy-body =
    Hello,

    within the next { $days } days, your access to a health record
    you open for a child changes: at 12 the law gives a young person
    privacy for some of their care, so you will see less of the
    record, and at 18 your access ends. Sign in to see on which day
    and what changes:
    { $proxies }
mail-access-changes-patient-body =
    Hello,

    within the next { $days } days, what your parents or guardians
    can see of your health record changes: some of your care becomes
    private to you, and when you are an adult their access ends.
    Sign in to see on which day and what changes:
    { $proxies }
mail-access-ended-proxy-subject = Your access to a health record has ended
mail-access-ended-patient-subject = Access to your health record has changed
mail-access-ended-adult-body =
    Hello,

    your access to a health record you opened as a parent or
    guardian has ended, because the person is now an adult.
    They can invite you again from their own account.

    Your account:
    { $account }
mail-access-ended-by-patient-body =
    Hello,

    your access to a health record you opened for someone ended
    on { $when }: the person ended it.
    Ask them if you think this is wrong.

    Your account:
    { $account }
mail-access-ended-patient-body =
    Hello,

    now that you are an adult, the access your parents or guardians
    had to your health record has ended.
    You can invite someone to see your record here:
    { $proxies }
mail-proxy-expires-subject = Someone's access to your record ends soon
mail-proxy-expires-body =
    Hello,

    within the next { $days } days, the access of someone you allowed
    to see your health record ends. To keep it, renew it here:
    { $proxies }
