-- Listing a user's /out (what FTPS clients poll for their status files) reads this index
-- alone, in upload order: no sort, and none of the table's pages, which hold the files'
-- bodies inline.
CREATE INDEX out_files_listing ON out_files (user_id, id, name, size, created_at);
