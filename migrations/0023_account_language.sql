-- The language an account chose for its pages and mails (issue 16 part 6): `en` or `es`.
-- NULL: never chosen; pages follow the browser, mails go in English.
ALTER TABLE accounts ADD COLUMN language TEXT;
