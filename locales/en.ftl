# English: the reference catalogue. Every other language has every message here
# (a test fails otherwise); a message missing at run time falls back to English.

## Field labels, as visitors see them next to the form's inputs.
field-name = Name
field-email = Email
field-subject = Subject
field-message = Message
field-category = Category
field-organization = Organization
field-country = Country
field-phone = Phone
field-consent = Consent
field-page = Page

## Category names, as a form's category choice shows them.
category-inquiry = Inquiry
category-question = Question
category-commendation = Commendation
category-other = Other

## Field errors, by code. $label is the field's label in this language.
error-required = { $label } is required.
error-too_long = { $label } must be at most { $max } characters.
error-multiline = { $label } must be a single line.
error-control_characters = { $label } must not contain control characters.
error-invalid_email = { $label } is not a valid email address.
error-invalid_characters = { $label } may contain only digits, spaces and + - ( ) .
error-invalid_choice = { $label } is not one of the choices offered.
error-invalid_type = { $label } has the wrong type of value.
error-unknown_field = { $label } is not a field of this form.
error-consent_required = Please give your consent to send this form.
error-captcha_required = Please complete the anti-spam check.
error-captcha_failed = The anti-spam check failed; please try it again.
error-out_of_range = { $label } must be in the range { $range }.
error-invalid_url = { $label } must be a web address starting with http:// or https://.
error-invalid_date = { $label } must be a date like 2026-05-31.
error-too_large = { $label } must be at most { $max } bytes per file.
error-too_many_files = { $label } takes at most { $max } files.
error-invalid_file_type = { $label } is not a type of file this form accepts.
error-empty_file = { $label } is an empty file.
problem-file-too-large-title = File too large

## Problems (RFC 9457 title and detail), by the problem's slug.
problem-malformed-body-title = Malformed request body
problem-malformed-body-json = The body is not valid JSON: { $why }
problem-malformed-body-form = The body is not valid application/x-www-form-urlencoded: { $why }
problem-malformed-body-unreadable = The body could not be read: { $why }
problem-body-too-large-title = Request body too large
problem-body-too-large-detail = The body must be at most { $limit } bytes.
problem-body-timeout-title = Request body too slow
problem-body-timeout-detail = The whole body must arrive within { $seconds } seconds.
problem-unsupported-media-type-title = Unsupported media type
problem-unsupported-media-type-detail = Send application/json, application/x-www-form-urlencoded or multipart/form-data.
problem-validation-title = Invalid submission
problem-validation-detail = { $count } fields need attention.
problem-idempotency-key-reused-title = Idempotency key reused
problem-idempotency-key-reused-detail = This Idempotency-Key was already used with a different body; use a new key.
problem-idempotency-key-in-flight-title = Request already in flight
problem-idempotency-key-in-flight-detail = The first request with this Idempotency-Key is still being processed; retry shortly.
problem-origin-not-allowed-title = Origin not allowed
problem-origin-not-allowed-detail = Requests from this origin are not accepted.
problem-rate-limited-title = Too many requests
problem-rate-limited-detail = Too many requests; retry in { $retry_after } seconds.
problem-storage-unavailable-title = Service temporarily unavailable
problem-storage-unavailable-detail = Storage is busy or unavailable; nothing was saved. Retry in { $retry_after } seconds.
problem-internal-title = Internal error
problem-internal-detail = Something went wrong on our side; nothing about it is your fault.

## The HTML pages a form posted without JavaScript lands on.
page-error-title = Your message was not sent
page-error-back = Use your browser's Back button to return to the form; what you typed is still there.
page-thanks-title = Thank you
page-thanks-body = We received your message and will answer it as soon as we can.
page-thanks-reference = Your reference: { $id }

## The receipt email to the visitor (staff email is never translated).
receipt-subject = We received your message: { $subject } ({ $id })
receipt-greeting = Dear { $name },
receipt-body = thank you for contacting us. We received your message and will answer it as soon as we can. If you write to us about it again, please mention this reference: { $id }
receipt-your-message = Your message:
receipt-subject-label = Subject: { $subject }
receipt-automatic = This is an automatic confirmation; there is no need to reply to it.
