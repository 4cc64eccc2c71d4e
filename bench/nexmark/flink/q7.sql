-- TUMBLE as Flink's window TVF, grouped by window_start and window_end (see q5.sql).
CREATE TEMPORARY TABLE nexmark_q7 (
    auction BIGINT, price BIGINT, bidder BIGINT, date_time TIMESTAMP(3)
) WITH ('connector' = 'blackhole');
INSERT INTO nexmark_q7
SELECT
    B.auction,
    B.price,
    B.bidder,
    B.date_time
from
    bid B
    JOIN (
        SELECT
            MAX(price) AS maxprice,
            window_end as date_time
        FROM
            TABLE(TUMBLE(TABLE bid, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
        GROUP BY
            window_start,
            window_end
    ) B1 ON B.price = B1.maxprice
WHERE
    B.date_time BETWEEN B1.date_time - INTERVAL '10' SECOND
    AND B1.date_time;
