-- A tiny shop, the demo's "production" database. Loaded by docs/demo/run.sh.
SET NAMES utf8mb4;

CREATE TABLE customer (
  id INT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  email VARCHAR(120) NOT NULL UNIQUE,
  name VARCHAR(80) NOT NULL,
  country CHAR(2) NOT NULL DEFAULT 'DE',
  created_at DATETIME(6) NOT NULL
) CHARACTER SET utf8mb4 COMMENT 'people who bought something';

CREATE TABLE product (
  id INT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  sku VARCHAR(20) NOT NULL UNIQUE,
  title VARCHAR(200) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  tags SET('new','sale','eco') NOT NULL DEFAULT '',
  image VARCHAR(200) NULL,
  attributes JSON NULL
) CHARACTER SET utf8mb4;

CREATE TABLE `order` (
  id INT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  customer_id INT UNSIGNED NOT NULL,
  status ENUM('cart','paid','shipped') NOT NULL,
  placed_at TIMESTAMP NULL,
  total DECIMAL(12,2) NOT NULL DEFAULT 0,
  FOREIGN KEY (customer_id) REFERENCES customer (id)
) CHARACTER SET utf8mb4;

CREATE TABLE order_line (
  order_id INT UNSIGNED NOT NULL,
  product_id INT UNSIGNED NOT NULL,
  quantity SMALLINT UNSIGNED NOT NULL,
  PRIMARY KEY (order_id, product_id),
  FOREIGN KEY (order_id) REFERENCES `order` (id) ON DELETE CASCADE,
  FOREIGN KEY (product_id) REFERENCES product (id)
) CHARACTER SET utf8mb4;

INSERT INTO product (sku, title, price, tags, image, attributes) VALUES
  ('MUG-01', 'Mug „Morning“ ☕', 12.90, 'new', 'products/mug.svg', '{"color": "blue", "ml": 300}'),
  ('TEE-02', 'T-shirt Größe M', 24.50, 'sale,eco', 'products/tee.svg', '{"size": "M"}'),
  ('CAP-03', 'Cap 🧢', 15.00, '', NULL, NULL);

INSERT INTO customer (email, name, country, created_at)
  SELECT CONCAT('customer', seq, '@example.com'), CONCAT('Customer ', seq),
         ELT(1 + seq % 4, 'DE', 'CH', 'AT', 'FR'), '2024-01-01' + INTERVAL seq MINUTE
  FROM seq_1_to_5000;

INSERT INTO `order` (customer_id, status, placed_at)
  SELECT 1 + seq % 5000, ELT(1 + seq % 3, 'cart', 'paid', 'shipped'),
         '2024-02-01' + INTERVAL seq MINUTE
  FROM seq_1_to_20000;

INSERT INTO order_line (order_id, product_id, quantity)
  SELECT o.id, p.id, 1 + (o.id + p.id) % 3 FROM `order` o JOIN product p ON (o.id + p.id) % 2 = 0;

UPDATE `order` o SET total = (SELECT COALESCE(SUM(l.quantity * p.price), 0)
                              FROM order_line l JOIN product p ON p.id = l.product_id
                              WHERE l.order_id = o.id);

CREATE VIEW revenue_by_country AS
  SELECT c.country, SUM(o.total) AS revenue FROM `order` o JOIN customer c ON c.id = o.customer_id
  WHERE o.status <> 'cart' GROUP BY c.country;
