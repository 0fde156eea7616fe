-- Forms (issue 13): which form an inquiry was sent with, and the values of that
-- form's custom fields as a JSON object by field name (kept as the text the
-- service wrote, like spam_flags, so both backends read it with one mapper).
-- Inquiries stored before came from the one contact form and had no custom fields.
ALTER TABLE inquiries ADD COLUMN form TEXT NOT NULL DEFAULT 'contact';
ALTER TABLE inquiries ADD COLUMN fields TEXT NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(fields::jsonb) = 'object');
CREATE INDEX inquiries_form ON inquiries (form, seq);
