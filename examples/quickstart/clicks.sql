-- The quick start's pipeline: the topic `clicks` as a source with an event-time watermark,
-- and a live view of page views per 10-second window, updated as clicks arrive.
CREATE SOURCE clicks (
    user_name VARCHAR,
    page VARCHAR,
    ts TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (topic = 'clicks', format = 'json');

CREATE MATERIALIZED VIEW page_views AS
SELECT window_start, window_end, page, count(*) AS views, count(DISTINCT user_name) AS visitors
FROM TUMBLE(clicks, ts, INTERVAL '10' SECOND)
GROUP BY window_start, window_end, page;
