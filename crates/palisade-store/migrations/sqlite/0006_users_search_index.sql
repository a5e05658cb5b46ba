-- The admin console's user list (UserStore::search_users): ordered by username_canonical,
-- searched by substring of username_canonical or email_canonical.
--
-- The unlimited first page needs no new index: the UNIQUE constraint on username_canonical
-- already gives one to walk in order. A search, though, is `LIKE '%…%'`, which no B-tree can
-- seek; this index holds both searched columns, in list order, so the search and its COUNT
-- scan the index alone (a few MB at 100,000 users) instead of every full row, and the page
-- query stops as soon as it has found a page of matches.
CREATE INDEX users_canonical_search ON users (username_canonical, email_canonical);
