### The page frame, errors, sign-in failures and words every page shares.

skip-to-main = Skip to main content

language-switch-label = Language
language-unknown = That language is not offered. Choose English or Español.

sign-in = Sign in
sign-out = Sign out

create-account = Create an account

continue = Continue

try-again = Try again

footer-help = Questions about your record? Harbor Health Information Management: 360-555-0100. This site is not for emergencies — call 911.

error-from-app = If an app sent you here, go back to the app and try again, or contact the app's developer.
error-too-many-title = Please wait a moment
error-too-many = There have been too many attempts. Please wait { $seconds } seconds and try again.
error-bad-request-title = Something is not right
error-forbidden-title = Not allowed
error-unavailable-title = Please try again
error-unavailable = Something went wrong on our side. Please try again in a moment.
error-csrf = This form has expired or did not come from this site. Go back, reload the page and try again.
error-control-character = Something you typed holds a character that cannot be used here (an invisible control character, such as a NUL). Remove it and try again.
error-not-found-title = Not found
error-not-found = There is no such page.
error-page-not-found-title = Page not found
error-page-not-found = We could not find that page. It may have moved, or the address may be mistyped.
error-record-not-available-title = This record is not available to you right now
error-record-not-available = Your access to this record has changed — for example when a child turns 12 or 18, or when access ends. Harbor Health Information Management can help: 360-555-0100.

app-not-yours = That app is not one you allowed.

oidc-failed-title = Sign-in did not complete
oidc-unreachable-named = We can't reach the sign-in service (“{ $service }”) right now. Please try again in a few minutes, or sign in with a Portico account.
oidc-state-mismatch = This sign-in link is not valid for this browser, or it was already used. Go back to the sign-in page and try again.
oidc-cancelled = The sign-in was cancelled or not allowed, so you are not signed in. You can try again, or sign in with a Portico account.
oidc-provider-error = The sign-in service could not sign you in, so you are not signed in. Please try again later, or sign in with a Portico account.
oidc-wrong-issuer = This sign-in answer did not come from the expected sign-in service. Please try again.
oidc-unreachable = We can't reach the sign-in service right now. Please try again in a few minutes.
oidc-expired = The sign-in took too long. Please start again.
oidc-not-confirmed = We couldn't confirm this sign-in with the sign-in service, so you are not signed in. Please start again.

and-joiner = {" "}and{" "}

from-sources = From { $sources }

about-record = About this record

right-to-copy = You have the right to a copy of the complete record. Ask Harbor Health Information Management for a “release of information” by phone, by e-mail or in person.

not-for-emergencies = Not for emergencies.
