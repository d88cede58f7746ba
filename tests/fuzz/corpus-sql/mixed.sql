\set aid random(1, 100000 * :scale)
\set z random_zipfian(1, 100, 2)
\sleep :z ms
BEGIN;
SELECT :aid::text, ':notvar' -- c
  FROM t WHERE a = :aid;
COMMIT;
