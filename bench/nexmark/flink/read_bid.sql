-- The limit, as Weir's bench measures it: every bid read and decoded, none kept.
CREATE TEMPORARY TABLE nexmark_read_bid (auction BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO nexmark_read_bid SELECT auction FROM bid WHERE auction IS NULL;
