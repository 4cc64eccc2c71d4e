SET extra_float_digits = 3;
SHOW transaction_isolation;
SHOW standard_conforming_strings;
SELECT version();
SELECT current_database(), current_schema();
SELECT t.oid, t.typname FROM pg_catalog.pg_type t WHERE t.typname = 'int8';
SELECT table_name FROM information_schema.tables WHERE table_schema = 'public';
SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'cap';
SELECT 'cap'::regclass;
