-- The language the visitor was answered in (a tag: en, ru, zh, kk); the receipt
-- email is written in it.
ALTER TABLE inquiries ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';
