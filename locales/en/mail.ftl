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
