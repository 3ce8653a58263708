# Guichet, English. Every message here has its twin in ../fr-CA/guichet.ftl.

## Every page
site-name = Guichet
lang-switch = Français
lang-switch-label = Afficher cette page en français
help-contact = Need help? Contact us.
help-contact-at = Need help? Contact us:
help-contact-page = other ways to reach us
mfa-change-helpdesk = To change your verification method, contact us.
error-heading = Please correct the following
expired-title = Sign-in request expired
expired-message = Your sign-in request has expired or was already used.
expired-next = Go back to the portal and select the sign-in button again.
refused-title = Request refused
refused-next = Go back to the portal and try again.
start-over = Start over

## Sign in
login-title = Sign in
login-intro = Sign in to continue to { $portal }.
field-email = Email address
field-email-hint = Your contact email address, as entered in your file.
field-password = Password
login-submit = Sign in
login-first-time = First login or forgot your password?
login-wrong = Incorrect email or password. Check what you typed. If this is your first login, or if your account is not activated yet, select “First login or forgot your password?”.
login-locked = Too many attempts: your account is temporarily locked. Try again later, or select “First login or forgot your password?” to reset your password. If the problem persists, contact us.
login-throttled = Too many attempts from your network. Try again in a few minutes.
login-email-missing = Enter your email address.
login-password-missing = Enter your password.

## Second factor: authenticator app
totp-title = Two-factor authentication
totp-intro = Open your authentication app and enter the six-digit code shown for the { $issuer } account.
field-code = Verification code
field-code-hint = Six digits, without spaces.
code-submit = Verify
totp-wrong = Incorrect code. Make sure your authentication app is set up and that you use the code of the { $issuer } account.
totp-replayed = This code was already used. Wait for a new code to appear in your app, then try again: each code works only once.
totp-lost = Lost or changed your phone, or deleted the account in your app? Contact us to reconfigure two-factor authentication.
mfa-locked = Too many incorrect codes: your account is temporarily locked. Try again later, or select “First login or forgot your password?” on the sign-in page. If the problem persists, contact us.

## Second factor and journeys: emailed codes
email-code-title = Email verification
email-code-intro = We sent a six-digit verification code to { $email }.
code-wrong = { $tries ->
    [one] Incorrect code. Check the six digits and enter the last code you received. You have one try left.
   *[other] Incorrect code. Check the six digits and enter the last code you received. You have { $tries } tries left.
}
code-expired = This code has expired. Select “Send a new code”.
code-validity = It is valid for { $minutes } minutes.
code-used = This code was already used. Select “Send a new code”.
code-replaced = This code was replaced by a newer one: a code stops working when you ask for a new code. Enter the last code you received.
code-too-many = Too many incorrect tries: this code no longer works. Select “Send a new code”.
code-none = There is no valid code. Select “Send a new code”.
code-resend = Send a new code
code-sent = A new code was sent to { $email }. The previous code no longer works.
code-resend-wait = { $seconds ->
    [one] You can ask for a new code in one second.
   *[other] You can ask for a new code in { $seconds } seconds.
}
code-send-failed = We could not send the code. Try again in a moment.
code-help-title = Did not receive the code?
code-help-spam = Look in your spam or junk folder.
code-help-address = Make sure you use the contact email address linked to your file.
code-help-filter = If you use a work address, ask your technical support whether security filters blocked the message.
code-help-resend = Select “Send a new code”. If the problem persists, contact us.

## First login or forgotten password
reset-title = First login or forgotten password
reset-intro = Enter the contact email address in your file. We will send a six-digit verification code to it.
reset-submit = Send me a code
reset-code-title = Enter the verification code
reset-code-intro = If { $email } is the contact address of a file, a six-digit verification code was just sent to it.
email-invalid = Enter a valid email address, such as name@example.com.
back-to-login = Back to sign in

## New password
password-title = Choose a new password
password-policy = Your password must have at least { $min } characters, including three of the following: lowercase letters, uppercase letters, numbers and special characters. It must not contain your email address or be easy to guess.
field-new-password = New password
field-confirm-password = Confirm the new password
password-submit = Save the password
password-too-short = The password is too short: use at least { $min } characters.
password-too-long = The password is too long: use at most 256 characters.
password-too-few-classes = Use at least three of these: lowercase letters, uppercase letters, numbers, special characters.
password-contains-email = The password must not contain your email address.
password-too-guessable = This password is too easy to guess (common word, name, date or sequence). Choose another one.
password-mismatch = The two passwords differ. Type the same password twice.

## Activating two-factor authentication
enrol-title = Activate two-factor authentication
enrol-intro = Two-factor authentication is required each time you sign in. Choose your verification method. You can activate only one; to change it later, contact us.
enrol-app = Authentication app (recommended)
enrol-app-help = A one-time code from an app on your cell phone or tablet, such as Microsoft Authenticator or Google Authenticator.
enrol-email = Email
enrol-email-help = A one-time code sent to your contact email address.
enrol-submit = Continue
enrol-choose-missing = Choose a verification method.
totp-enrol-title = Set up your authentication app
totp-enrol-step-open = Open your authentication app (not the camera) on your cell phone or tablet.
totp-enrol-step-scan = Press the add icon, usually in the bottom right-hand corner of the app, and scan the QR code.
totp-enrol-alternatives = If the scan does not work:
totp-enrol-link = open this link on the device that has the app
totp-enrol-key = or enter this key manually:
totp-enrol-account = The account appears in your app as { $issuer }. You can rename it.
totp-enrol-step-code = Enter the six-digit code shown by the app to finish the activation.
qr-title = QR code to scan with your authentication app
email-enrol-title = Confirm your email address
email-enrol-intro = To activate verification by email, enter the six-digit code we sent to { $email }.

## Consent
consent-title = Authorization
consent-intro = { $portal } is asking for access to:
consent-allow = Allow
consent-deny = Deny
scope-openid = Identify you
scope-profile = Your name
scope-email = Your email address
scope-offline_access = Keep access while you are away
scope-other = Another permission of this portal

## Sign out
logout-title = Sign out?
logout-intro = You will be signed out of every portal.
logout-submit = Sign out
logout-done-title = You are signed out.
logout-done-intro = You may close this page.

## Authorization response sent by form
form-post-title = Returning to the portal
form-post-intro = If nothing happens, select Continue.
form-post-submit = Continue

## Refused requests (shown on the error page)
refused-no-client = The request names no portal (client_id is missing).
refused-unknown-client = The portal that sent you here is not registered.
refused-no-redirect = The request has no return address (redirect_uri).
refused-redirect-unregistered = The return address is not registered for this portal.
logout-bad-hint = The sign-out request carries an ID token (id_token_hint) that is not valid.
logout-foreign-hint = The sign-out request carries an ID token issued by another service.
logout-redirect-unregistered = The return address after signing out is not registered for this portal.
logout-form-invalid = The sign-out form is not valid.
logout-form-expired = The sign-out form has expired. Try again.
refused-parameter-too-long = A parameter of the request is too long.
refused-parameter-repeated = A parameter of the request is repeated.

## Requests that cannot be read, addresses with no page
unreadable-title = Request not understood
unreadable-message = This request could not be read: the address or the form it sent is not valid.
unreadable-too-large = The form sent more than this service accepts.
unreadable-next = Go back to the previous page and try again. If it happens again, contact us.
not-found-title = Page not found
not-found-message = There is no page at this address.
not-found-next = Check the address, or go back to the portal you came from.
not-allowed-title = Request not accepted here
not-allowed-message = This address does not take this kind of request.

## Account page
account-title = My account
account-profile = Profile
account-name = Name
account-email = Contact email
account-member-code = Member code
account-none = None
account-unknown = Unknown
account-method-title = Verification method
account-method-totp = Authenticator app: a 6-digit code from the app on your phone at each sign-in.
account-method-email = Emailed code: a 6-digit code sent to your contact email at each sign-in.
account-method-none = None chosen yet: you will choose one at your next sign-in.
account-sign-ins = Recent sign-ins
account-sign-ins-empty = No sign-in recorded yet.
account-portal = Portal
account-when = When
account-ip = IP address
account-how = How
account-how-password = Password and verification code
account-how-sso = Already signed in (no password asked)
account-sessions = Active sessions
account-session-current = This browser
account-session-started = Signed in
account-session-last-seen = last used
account-session-end = End this session
account-session-end-current = Sign out of this browser
account-session-ended = The session has ended. The portals it had opened were notified.
account-signin-failed = Signing in to your account page did not complete. Open your account page again.
account-form-expired = The form has expired. Open your account page again and try once more.

## Auditor console
audit-title = Audit log
audit-from = From
audit-until = Until
audit-dates-hint = Dates in UTC: YYYY-MM-DD, or YYYY-MM-DDTHH:MM. An end date includes that whole day.
audit-subject = Person (email or member code)
audit-client = Portal (client id)
audit-event-type = Event
audit-ip = IP address
audit-apply = Apply the filters
audit-export-csv = Export as CSV
audit-export-jsonl = Export as JSON Lines
audit-none = No event matches these filters.
audit-older = Older events
audit-newest = Newest events
audit-col-time = Time (UTC)
audit-col-actor = Actor
audit-col-subject = Person
audit-col-detail = Detail
audit-bad-date = A date is not valid. Use YYYY-MM-DD, or YYYY-MM-DDTHH:MM, in UTC.
audit-unknown-subject = No person has that email address or member code. Check what you typed.
audit-forbidden = This page is for auditors. If you need access, ask an administrator to grant you the auditor role.

## Helpdesk and administration console
staff-title = Helpdesk
staff-forbidden = This page is for the helpdesk, administrators and auditors. If you need access, ask an administrator to grant you a role.
staff-nav-people = People
staff-nav-clients = Portals and keys
staff-search-label = Email address, member code or name
staff-search-hint = Member codes: 5-digit licence (54321), R and 5 digits (R12345), E and 8 digits (E12342012), or 8 digits starting with 500 (50012345).
staff-search = Search
staff-nobody = Nobody matches. Check the spelling, or search by email address or member code.
staff-more = More than { $limit } people match: the first { $limit } in alphabetical order are listed. Add a word of the name, or search by email address or member code.
staff-no-such-person = No person has that id, email address or member code.
staff-invalid-member-code = That member code is not valid. Use 5 digits, R and 5 digits, E and 8 digits, or 8 digits starting with 500.
staff-query-too-short = Type at least two letters of a name, an email address or a member code.
staff-state = Status
staff-state-active = Active
staff-state-locked = Locked
staff-state-disabled = Disabled
staff-state-must-reset = Not activated (first login to do)
staff-status = Account status
staff-language = Language
staff-locked-until = until
staff-must-reset = Must go through “First login or forgot your password?”
staff-yes = Yes
staff-no = No
staff-roles = Staff roles
staff-live-sessions = Open sessions
staff-pending-email = Email change waiting for confirmation
staff-actions = Actions
staff-reason-hint = Every action needs a reason, kept in the audit log: say what the person asked and how you checked who they are.
staff-reason = Reason
staff-reason-missing = Write the reason for this action.
staff-reason-too-long = The reason is too long: at most 500 characters.
staff-action-reset-2fa = Reset the verification method
staff-action-reset-2fa-hint = The person will confirm their email address with a code, choose a new password and set up a verification method at their next sign-in.
staff-action-unlock = Unlock the account
staff-action-email = Change the contact email address
staff-action-email-hint = A code is sent to the new address and a notice to the old one. The change takes effect when the person enters the code; until then they sign in with the old address.
staff-new-email = New email address
staff-action-invite = Send a first-login invitation
staff-action-end-sessions = End every session
staff-action-disable = Disable the account
staff-action-disable-hint = The person can no longer sign in, and every open session ends.
staff-action-enable = Enable the account
staff-email-taken = That email address is already the contact address of another account.
staff-email-pending = A change to that email address is already waiting for another account.
staff-same-email = That is already the person’s contact email address.
staff-already-active = The person has already activated their account. To help them, reset their verification method or unlock them instead.
staff-disabled = The account is disabled. Enable it first.
staff-done-reset-2fa = The verification method was reset. The person will set up a new one at their next sign-in.
staff-done-unlock = The account is unlocked.
staff-done-email = A code was sent to the new address and a notice to the old one. The change takes effect when the person enters the code.
staff-done-invite = The invitation was sent.
staff-done-end-sessions = Every session of the person was ended.
staff-done-disable = The account is disabled and its sessions were ended.
staff-done-enable = The account is enabled.
admin-title = Portals and signing keys
admin-clients = Registered portals
admin-client-id = Client id
admin-client-name = Name
admin-client-kind = Kind
admin-kind-confidential = Confidential (a server that keeps a secret)
admin-kind-public = Public (an app in a browser or on a phone; PKCE, no secret)
admin-enabled = Enabled
admin-disabled = Disabled
admin-redirect-uris = Redirect URIs
admin-post-logout-uris = Post-logout redirect URIs
admin-backchannel-uri = Back-channel logout URI
admin-uris-hint = One per line, exact https addresses (http only on localhost).
admin-save-uris = Save the redirect URIs
admin-rotate-secret = New secret
admin-disable = Disable
admin-enable = Enable
admin-new-client = Register a portal
admin-create = Register
admin-secret-title = Client secret
admin-secret-once = Copy this secret now and give it to the portal’s operators: it is shown only once and cannot be displayed again.
admin-keys = Signing keys
admin-rotate-keys = Rotate the signing keys
admin-rotate-keys-hint = A new key is created for each algorithm; the old ones stay published until the tokens they signed have expired.
admin-configured-client = This portal is declared in the configuration file: change it there.
admin-no-such-client = No portal has that client id.
admin-client-exists = A portal with that client id is already registered.
admin-invalid-client = The registration is not valid.
admin-done-saved = Saved.
admin-done-redirect-uris = The redirect URIs were saved.
admin-done-disable = The portal is disabled.
admin-done-enable = The portal is enabled.
admin-done-keys = New signing keys were created. Every server uses them within a minute.

## Confirming a new contact email
email-change-title = Confirm my new email address
email-change-intro = The helpdesk changed your contact email address at your request. Enter the new address and the six-digit code we sent to it.
email-change-new-address = New email address
email-change-confirm = Confirm
email-change-done = Your contact email address is changed. From now on, sign in with the new address.
email-change-wrong-code = This code is not valid for this address. Check the address and the code, and try again.
email-change-expired = This code has expired. Contact us to start the change again.
email-change-too-many = Too many wrong codes. Contact us to start the change again.
email-change-form-expired = The form has expired. Open the page again and try once more.
staff-nav-policies = Sign-in policy
policy-title = Sign-in policy
policy-intro = The rules every sign-in follows. Each value stays within safe bounds; a change applies on every server within a minute and is recorded with its reason.
policy-rule = Rule
policy-value = Value
policy-bounds = Allowed
policy-save = Save the policy
policy-saved = The policy was saved.
policy-max-failures = Failed attempts before an account locks
policy-failure-window-secs = Seconds during which failures count
policy-lock-secs = First lock, in seconds (doubles with each lock)
policy-max-lock-secs = Longest lock, in seconds
policy-ip-max-failures = Failed attempts from one network address before it must wait
policy-email-code-ttl-secs = Lifetime of an emailed code, in seconds
policy-email-code-max-attempts = Wrong tries before an emailed code stops working
policy-resend-interval-secs = Seconds between two codes sent to a person at the request of one address
policy-resend-max-per-hour = Codes sent to a person per hour at the request of one address (four times as many from all addresses together)
policy-password-min-length = Shortest password, in characters
admin-policy-out-of-bounds = A value is outside its allowed range.
