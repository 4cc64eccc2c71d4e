-- split_part(url, '/', n) (from 1) is SPLIT_INDEX(url, '/', n - 1) (from 0) in Flink.
CREATE TEMPORARY TABLE nexmark_q22 (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR,
    dir1 VARCHAR, dir2 VARCHAR, dir3 VARCHAR
) WITH ('connector' = 'blackhole');
INSERT INTO nexmark_q22
SELECT
    auction, bidder, price, channel,
    SPLIT_INDEX(url, '/', 3) as dir1,
    SPLIT_INDEX(url, '/', 4) as dir2,
    SPLIT_INDEX(url, '/', 5) as dir3
FROM
    bid;
