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

## Field errors, by code. $label is the field's label in this language.
error-required = { $label } is required.
error-too_long = { $label } must be at most { $max } characters.
error-multiline = { $label } must be a single line.
error-control_characters = { $label } must not contain control characters.
error-invalid_email = { $label } is not a valid email address.
error-invalid_phone = { $label } may contain only digits, spaces and + - ( ) .
error-invalid_choice = { $label } is not one of the choices offered.
error-invalid_type = { $label } has the wrong type of value.
error-unknown_field = { $label } is not a field of this form.
error-consent_required = Please give your consent to send this form.
error-captcha_required = Please complete the anti-spam check.
error-captcha_failed = The anti-spam check failed; please try it again.

## Problems (RFC 9457 title and detail).
problem-malformed-title = Malformed request body
problem-malformed-json = The body is not valid JSON: { $why }
problem-malformed-form = The body is not valid form encoding: { $why }
problem-malformed-unreadable = The body could not be read: { $why }
problem-too-large-title = Request body too large
problem-too-large-detail = The body must be at most { $limit } bytes.
problem-body-timeout-title = Request body too slow
problem-body-timeout-detail = The whole body must arrive within { $seconds } seconds.
problem-unsupported-media-type-title = Unsupported content type
problem-unsupported-media-type-detail = Send application/json or application/x-www-form-urlencoded.
problem-validation-title = The form has errors
problem-validation-detail = { $count ->
    [one] One field needs attention.
   *[other] { $count } fields need attention.
}
problem-idempotency-mismatch-title = Idempotency key reused
problem-idempotency-mismatch-detail = This Idempotency-Key was already used with a different body; use a new key.
problem-idempotency-in-flight-title = Request still in progress
problem-idempotency-in-flight-detail = The first request with this Idempotency-Key is still being processed; retry shortly.
problem-forbidden-origin-title = Origin not allowed
problem-forbidden-origin-detail = Requests from this origin are not accepted.
problem-rate-limited-title = Too many requests
problem-rate-limited-detail = { $retry_after ->
    [one] Too many requests; retry in one second.
   *[other] Too many requests; retry in { $retry_after } seconds.
}
problem-unavailable-title = Service unavailable
problem-unavailable-detail = Storage is busy or unavailable; nothing was saved. Retry in { $retry_after } seconds.
problem-not-found-title = Not found
problem-not-found-detail = There is nothing at this address.
problem-internal-title = Internal error
problem-internal-detail = Something went wrong on our side; nothing you sent was lost. Please try again later.

## The HTML pages a form posted without JavaScript lands on.
page-error-title = Your message was not sent
page-error-back = Use your browser's Back button to return to the form; what you typed is still there.
page-thanks-title = Thank you
page-thanks-body = We received your message and will answer it as soon as we can.
page-thanks-reference = Your reference: { $id }
