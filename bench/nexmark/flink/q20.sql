CREATE TEMPORARY TABLE nexmark_q20 (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    bid_date_time TIMESTAMP(3), item_name VARCHAR, description VARCHAR, initial_bid BIGINT,
    reserve BIGINT, auction_date_time TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT,
    category BIGINT
) WITH ('connector' = 'blackhole');
INSERT INTO nexmark_q20
SELECT
    auction, bidder, price, channel, url, B.date_time as bid_date_time,
    item_name, description, initial_bid, reserve, A.date_time as auction_date_time, expires, seller, category
FROM
    bid AS B INNER JOIN auction AS A on B.auction = A.id
WHERE A.category = 10;
