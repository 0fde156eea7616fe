-- Email addresses are now compared, limited and erased in one normal form: the
-- local part lower-cased, the domain in its lower-case ASCII (IDNA) form, so
-- that `idn@пример.рф` and `idn@xn--e1afmkfd.xn--p1ai` are one address.
--
-- SQLite cannot convert a domain to IDNA (that needs the Unicode IDNA mapping
-- tables), so this migration only marks the work: right after applying
-- migrations the service recomputes `email_norm` of every row whose normal form
-- is not ASCII (store::normalize_stored_emails) and removes the mark, in one
-- transaction. Rows with ASCII domains already have their final form.
INSERT OR REPLACE INTO meta (key, value) VALUES ('email_norm', 'convert-to-idna');
