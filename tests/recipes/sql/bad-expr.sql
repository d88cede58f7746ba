-- a typo in a function name
\set aid random(1, 100000 * :scale)
\set bid randum(1, :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
