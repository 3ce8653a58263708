# Demo portals, English. Every message here has its twin in ../fr-CA/portals.ftl.

lang-switch = Français
lang-switch-label = Show this page in French
sign-out = Sign out
signed-in-as = Signed in as { $name }
footer = Demonstration portal. Sign-in is provided by Guichet.
back-home = Back to the home page

## Member file portal
file-name = Member portal
file-title = Your member file
file-intro = Consult and update your file with the Order: contact details, dues, continuing education.
file-access = Access your file
file-member = Member
file-email = Email
file-member-code = Member code
file-none = None
file-recent = Recent sign-ins
file-recent-empty = No sign-in recorded yet.
file-recent-unavailable = Your recent sign-ins cannot be shown right now. Sign out and sign in again to see them.
file-portal-col = Portal
file-when-col = When
file-ip-col = IP address
file-account = Manage your account (sessions, verification method)

## ATIP portal
atip-name = ATIP Online
atip-title = Access to information and privacy requests
atip-intro = Ask for records held by the institution, or for your own personal information.
atip-sign-in = Sign in to track your requests
atip-guest = Make a request as a guest
atip-guest-intro = As a guest, you do not need an account. Keep the request number you will get: you will not be able to track the request online.
atip-requests = Your requests
atip-requests-empty = You have no request yet.
atip-new-request = Make a new request
atip-request-title = Make a request
atip-request-kind = Type of request
atip-kind-access = Access to information (records of the institution)
atip-kind-privacy = Personal information (about you)
atip-request-subject = Records you are asking for
atip-request-subject-hint = Describe the records as precisely as you can: subject, dates, people or files concerned.
atip-request-email = Email address for the answer
atip-request-submit = Submit the request
atip-request-missing = Describe the records you are asking for.
atip-request-email-missing = Enter an email address for the answer.
atip-request-done-title = Request received
atip-request-done = Your request was received. Its number is { $number }.
atip-request-done-guest = Keep this number: as a guest, you will need it to ask about your request.
atip-request-done-member = You will find it with your other requests on your dashboard.
atip-status-received = Received

## Errors
error-title = Something went wrong
error-sign-in = Signing in did not complete. Go back to the home page and try again.
error-sign-in-refused = Signing in was not completed ({ $reason }). Go back to the home page and try again.
error-provider = The sign-in service cannot be reached right now. Try again in a few minutes.
error-form = The form has expired. Go back to the home page and try again.
error-not-found = This page does not exist.
