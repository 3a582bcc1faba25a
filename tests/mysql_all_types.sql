-- Every MySQL/MariaDB case the engine must copy exactly. Loaded with the mariadb client into
-- an empty database (tests/dbfixtures.py: load_sql). The awkward values are the point.
SET NAMES utf8mb4;
SET time_zone = '+00:00';
SET sql_mode = 'NO_AUTO_VALUE_ON_ZERO';
SET foreign_key_checks = 0;

CREATE TABLE numbers (
  id INT NOT NULL PRIMARY KEY,
  u64 BIGINT UNSIGNED, i64 BIGINT, i8 TINYINT, z INT(5) UNSIGNED ZEROFILL,
  b1 BIT(1), b64 BIT(64), d DECIMAL(65,30), d2 DECIMAL(10,2),
  f FLOAT, fu FLOAT UNSIGNED, dbl DOUBLE, f7 FLOAT(7,3)
) COMMENT 'numbers; it''s "awkward"';
INSERT INTO numbers VALUES
 (1, 18446744073709551615, -9223372036854775808, -128, 42, b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
  '12345678901234567890123456789012345.123456789012345678901234567890', -12345678.99, 1.2345678, 1.5, 1.2345678, 1234.567),
 (2, 0, 9223372036854775807, 127, 0, b'0', b'0', '-0.000000000000000000000000000001', 0.01, 0.1, 0, 0.1, -0.001),
 (3, 1, 0, 0, 1, NULL, b'1000000000000000000000000000000000000000000000000000000000000000', 0, 0, 3.4028234e38, 3.4028234e38, 1.7976931348623157e308, NULL),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1.17549435e-38, 1e-45, 1e-300, 0),
 (5, 2, -1, -1, 2, b'1', b'101', '99999999999999999999999999999999999.999999999999999999999999999999', 1, -1.4e-45, 0, 4.9e-324, 1),
 (6, 3, 3, 3, 3, b'0', b'0', '3', 3, -3.4028234e38, 16777217, -1.7976931348623157e308, 2),
 (7, 4, 4, 4, 4, b'0', b'0', '4', 4, 16777217, 0.33333334, 2.2250738585072014e-308, 3),
 (8, 5, 5, 5, 5, b'0', b'0', '5', 5, 0.33333334, 1e10, 0.3333333333333333, 4),
 (9, 6, 6, 6, 6, b'0', b'0', '6', 6, NULL, NULL, NULL, 5),
 (10, 7, 7, 7, 7, b'0', b'0', '7', 7, 123456789, 7e-10, 123456789012345678, 6);

CREATE TABLE times (
  id INT NOT NULL PRIMARY KEY,
  d DATE, dt DATETIME(6), dt0 DATETIME, ts TIMESTAMP(6) NULL DEFAULT NULL, t TIME, t6 TIME(6), y YEAR
);
INSERT INTO times VALUES
 (1, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '-838:59:59', '-00:00:00.000001', 0),
 (2, '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', '2038-01-19 03:14:07.999999', '838:59:59', '838:59:58.999999', 2155),
 (3, '1000-01-01', '1000-01-01 00:00:00.000001', '1000-01-01 00:00:00', '1970-01-01 00:00:01.000000', '00:00:00', '-838:59:58.999999', 1901),
 (4, '2020-00-15', '2020-02-00 12:00:00.5', '2021-03-28 01:30:00', '2021-10-31 01:30:00.123456', '-01:02:03', '12:34:56.789', 2000),
 (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE texts (
  id INT NOT NULL PRIMARY KEY,
  e ENUM('a','b','c') COMMENT 'enum; with ''quote''',
  s SET('x','y','z'),
  j JSON,
  u VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
  m VARCHAR(100) CHARACTER SET utf8mb3,
  l VARCHAR(50) CHARACTER SET latin1,
  sj VARCHAR(20) CHARACTER SET sjis,
  gb VARCHAR(20) CHARACTER SET gbk,
  b5 CHAR(4) CHARACTER SET big5,
  uc VARCHAR(10) CHARACTER SET ucs2,
  tx TEXT CHARACTER SET utf8mb4,
  lt LONGTEXT CHARACTER SET latin1,
  st TEXT CHARACTER SET sjis
) DEFAULT CHARSET = utf8mb4;
INSERT INTO texts VALUES
 (1, 'a', 'x,z', '{"k": [1, 2.5, "é😀", null, true]}', 'emoji 😀 quote '' backslash \\ nul \0 ctrl-z \Z', 'Bjørk',
  _latin1 X'E9E8FFA0B55C27', _sjis X'955C', _gbk X'815C', _big5 X'B35C', 'ab\\c',
  'line1\nline2\r\n;\nINSERT INTO x VALUES (1);\n', _latin1 X'00FF5C275C5C', _sjis X'955C955C'),
 (2, 'bogus', '', '[]', '', '', '', '', '', '', '', '', '', ''),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 'c', 'x,y,z', '"\\u0000 \\"q\\""', 'ABC', 'abc', 'Café', '表示', '乗', '許', 'é',
  REPEAT('long text ünïcödé; ', 20000), REPEAT(_latin1 X'E9', 70000), '表');

CREATE TABLE bins (
  id INT NOT NULL PRIMARY KEY,
  bn BINARY(4), vb VARBINARY(20), tb TINYBLOB, bl BLOB, lb LONGBLOB
);
INSERT INTO bins VALUES
 (1, X'00275C1A', X'00275C1AFF0A0D3B', X'FF', X'00275C1AFF', X'0A3B0A'),
 (2, '', '', '', '', ''),
 (3, NULL, NULL, NULL, NULL, NULL),
 (4, X'FFFFFFFF', X'5C', X'27', X'5C5C27', REPEAT(X'00275C1AFF0A0D3B805C', 300000));

CREATE TABLE geo (
  id INT NOT NULL PRIMARY KEY,
  p POINT NOT NULL, pg POLYGON, g GEOMETRY, gc GEOMETRYCOLLECTION,
  SPATIAL INDEX sp (p)
);
INSERT INTO geo VALUES
 (1, ST_GeomFromText('POINT(-112.8185647 49.6999986)'), ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))'),
  ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0.5)'), ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1), LINESTRING(0 0,1 1))')),
 (2, ST_GeomFromText('POINT(0 0)', 4326), NULL, ST_GeomFromText('POINT(92 39.5)'), NULL);

CREATE TABLE gen (
  id INT NOT NULL PRIMARY KEY,
  a INT,
  v INT AS (a * 2) VIRTUAL,
  st VARCHAR(20) AS (CONCAT('x', a)) STORED,
  inv INT INVISIBLE DEFAULT 7 COMMENT 'invisible'
);
INSERT INTO gen (id, a, inv) VALUES (1, 10, 1), (2, NULL, NULL), (3, -5, 7);

CREATE TABLE nopk (a INT, b VARCHAR(10), c DOUBLE);
INSERT INTO nopk VALUES (1, 'a', 0.5), (1, 'a', 0.5), (2, NULL, NULL), (NULL, NULL, NULL), (NULL, NULL, NULL),
 (3, 'A', 1), (3, 'a', 1), (3, 'a ', 1);

CREATE TABLE uniq (code VARCHAR(10) NOT NULL, n INT, other INT, UNIQUE KEY nullable (other), UNIQUE KEY code (code));
INSERT INTO uniq VALUES ('b', 1, NULL), ('a', 2, NULL), ('C', 3, 5);

CREATE TABLE composite (a INT NOT NULL, b VARCHAR(5) NOT NULL, c INT, PRIMARY KEY (b, a));
INSERT INTO composite VALUES (2, 'x', 1), (1, 'x', 2), (1, 'a', 3);

CREATE TABLE autoinc (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(5)) AUTO_INCREMENT = 1000;
INSERT INTO autoinc VALUES (0, 'zero'), (1, 'one'), (5, 'five');
ALTER TABLE autoinc AUTO_INCREMENT = 1000;

CREATE TABLE parent (id INT NOT NULL PRIMARY KEY, name VARCHAR(20), touched INT DEFAULT 0);
CREATE TABLE child (id INT NOT NULL PRIMARY KEY, parent_id INT, CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE);
CREATE TABLE emp (id INT NOT NULL PRIMARY KEY, boss INT, FOREIGN KEY (boss) REFERENCES emp (id));
CREATE TABLE ca (id INT NOT NULL PRIMARY KEY, b_id INT, CONSTRAINT fk_ca_cb FOREIGN KEY (b_id) REFERENCES cb (id));
CREATE TABLE cb (id INT NOT NULL PRIMARY KEY, a_id INT, CONSTRAINT fk_cb_ca FOREIGN KEY (a_id) REFERENCES ca (id));
INSERT INTO parent VALUES (1, 'one', 0), (2, 'two', 0);
INSERT INTO child VALUES (1, 1), (2, 1), (3, NULL);
INSERT INTO emp VALUES (1, NULL), (2, 1), (3, 2);
INSERT INTO ca VALUES (1, 1), (2, NULL);
INSERT INTO cb VALUES (1, 2);

CREATE TABLE `odd ``name`` t` (`col ``x`` y` INT NOT NULL PRIMARY KEY, `sel;ect` VARCHAR(5)) COMMENT 'odd';
INSERT INTO `odd ``name`` t` VALUES (1, 'a;b'), (2, NULL);

CREATE VIEW v_zz AS SELECT p.id, p.name, COUNT(c.id) AS children FROM parent p LEFT JOIN child c ON c.parent_id = p.id GROUP BY p.id, p.name;
CREATE VIEW v_aa AS SELECT id, name FROM v_zz WHERE children > 0;
CREATE VIEW v_mm AS SELECT a.id, z.children FROM v_aa a JOIN v_zz z USING (id);
CREATE SQL SECURITY INVOKER VIEW `odd view` AS SELECT `col ``x`` y` AS x FROM `odd ``name`` t`;

DELIMITER ;;
CREATE TRIGGER parent_bi BEFORE INSERT ON parent FOR EACH ROW
BEGIN
  SET NEW.name = UPPER(NEW.name);
  SET NEW.touched = NEW.touched + 1;
END;;
CREATE TRIGGER parent_bi2 BEFORE INSERT ON parent FOR EACH ROW FOLLOWS parent_bi SET NEW.touched = NEW.touched * 10;;
CREATE TRIGGER parent_bi0 BEFORE INSERT ON parent FOR EACH ROW PRECEDES parent_bi SET NEW.touched = NEW.touched + 100;;
CREATE TRIGGER child_au AFTER UPDATE ON child FOR EACH ROW UPDATE parent SET touched = touched + 1 WHERE id = NEW.parent_id;;
CREATE FUNCTION f_add(a INT, b INT) RETURNS INT DETERMINISTIC
BEGIN
  DECLARE s INT;
  SET s = a + b; -- a comment; with semicolons
  RETURN s;
END;;
CREATE PROCEDURE p_count(OUT n INT)
BEGIN
  SELECT COUNT(*) INTO n FROM parent;
  SET n = n + f_add(1, 2);
END;;
DELIMITER ;
SET sql_mode = 'STRICT_ALL_TABLES';
CREATE FUNCTION f_strict() RETURNS VARCHAR(20) DETERMINISTIC RETURN 'semi;colon';
SET foreign_key_checks = 1;
