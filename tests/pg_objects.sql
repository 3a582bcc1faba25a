-- PostgreSQL objects beyond the first round (issue: engines, second round): custom collations,
-- classic inheritance, rules, row-level security and policies, replica identity, column storage,
-- compression and statistics targets, views that need a primary key. Loaded with psql.

CREATE COLLATION public.german_ci (provider = icu, locale = 'de-u-ks-level2', deterministic = false);
CREATE COLLATION public.plain_c (provider = libc, locale = 'C');
CREATE TABLE people (id int PRIMARY KEY, name text COLLATE public.german_ci, code text COLLATE public.plain_c);
INSERT INTO people VALUES (1, 'Müller', 'b'), (2, 'MÜLLER', 'A'), (3, 'Strauß', NULL);

-- classic inheritance: a parent with rows of its own, children with extra columns, their own
-- constraints and defaults, one child of two parents
CREATE TABLE vehicles (id int PRIMARY KEY, name text NOT NULL, wheels int DEFAULT 4 CHECK (wheels >= 0));
CREATE TABLE tagged (tag text, note text);
CREATE TABLE cars (seats int NOT NULL DEFAULT 5, CONSTRAINT seats_ok CHECK (seats > 0)) INHERITS (vehicles);
ALTER TABLE ONLY cars ALTER COLUMN wheels SET DEFAULT 3;
ALTER TABLE ONLY cars ADD CONSTRAINT cars_pkey PRIMARY KEY (id);
CREATE TABLE tagged_cars (extra jsonb, CHECK (tag IS NOT NULL)) INHERITS (cars, tagged);
ALTER TABLE ONLY tagged_cars ALTER COLUMN note SET NOT NULL;
INSERT INTO vehicles VALUES (1, 'cart', 2), (2, 'bike', 2);
INSERT INTO cars (id, name, seats) VALUES (10, 'mini', 4), (11, 'van', 9);
INSERT INTO tagged_cars (id, name, seats, tag, note, extra) VALUES (20, 'taxi', 4, 'yellow', 'n', '{"a": 1}');

-- rules: DO ALSO on a table, DO INSTEAD on a view, one disabled
CREATE TABLE audit_log (id serial PRIMARY KEY, what text NOT NULL);
CREATE RULE log_vehicle AS ON INSERT TO vehicles DO ALSO INSERT INTO audit_log (what) VALUES ('vehicle ' || NEW.name);
CREATE VIEW vehicle_names AS SELECT id, name FROM vehicles;
CREATE RULE vehicle_names_ins AS ON INSERT TO vehicle_names DO INSTEAD
  INSERT INTO vehicles (id, name) VALUES (NEW.id, NEW.name);
CREATE RULE keep_log AS ON DELETE TO audit_log DO INSTEAD NOTHING;
ALTER TABLE audit_log DISABLE RULE keep_log;
INSERT INTO audit_log (what) VALUES ('first');

-- row-level security: enabled, forced, permissive and restrictive policies
CREATE TABLE secrets (id int PRIMARY KEY, owner_name text NOT NULL, body text);
INSERT INTO secrets VALUES (1, 'alice', 'a'), (2, 'bob', 'b');
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON secrets FOR SELECT USING (owner_name = current_user);
CREATE POLICY no_bob ON secrets AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK (owner_name <> 'bob');
CREATE POLICY edit ON secrets FOR UPDATE USING (true) WITH CHECK (body IS NOT NULL);
CREATE TABLE open_notes (id int PRIMARY KEY);
ALTER TABLE open_notes ENABLE ROW LEVEL SECURITY;

-- replica identity
CREATE TABLE ri_full (id int, v text);
ALTER TABLE ri_full REPLICA IDENTITY FULL;
CREATE TABLE ri_nothing (id int PRIMARY KEY);
ALTER TABLE ri_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE ri_index (id int NOT NULL, k int NOT NULL);
CREATE UNIQUE INDEX ri_index_k ON ri_index (k);
ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_k;
INSERT INTO ri_full VALUES (1, 'x'), (1, 'x');
INSERT INTO ri_index VALUES (1, 7);

-- column storage, compression, statistics target
CREATE TABLE tuned (id int PRIMARY KEY, doc text, data bytea, n int);
ALTER TABLE tuned ALTER COLUMN doc SET STORAGE EXTERNAL, ALTER COLUMN data SET COMPRESSION pglz,
  ALTER COLUMN n SET STATISTICS 500, ALTER COLUMN id SET STORAGE PLAIN;
INSERT INTO tuned VALUES (1, repeat('long text ', 1000), '\x00ff', 3);

-- views whose query is valid only because of a primary key (GROUP BY the key)
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total numeric(10, 2));
INSERT INTO customers VALUES (1, 'Ann'), (2, 'Ben');
INSERT INTO orders VALUES (1, 1, 10.50), (2, 1, 5), (3, 2, 7.25);
CREATE VIEW customer_totals WITH (security_barrier) AS
  SELECT c.id, c.name, sum(o.total) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id;
CREATE VIEW big_customers AS SELECT name COLLATE "C" AS name, total FROM customer_totals WHERE total > 10;
CREATE MATERIALIZED VIEW customer_counts AS
  SELECT c.id, c.name, count(*) AS orders FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id;
COMMENT ON VIEW customer_totals IS 'needs the primary key of customers';
