-- The language the visitor was answered in (a tag: en, ru, zh, kk); the receipt
-- email is written in it. Inquiries stored before it was kept had English answers.
ALTER TABLE inquiries ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';
