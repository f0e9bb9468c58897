-- The invalidation log (proxy/invalidator/doc.go): every committed
-- change to users or posts appends, in its own transaction, each row-group
-- it changed (the names of Edgecache-Groups: post/7, user/42,
-- user/42/posts) with the group's version after the change. Triggers write
-- it, so SQL typed by hand is covered as well as the origin's own writes.
-- The invalidator tails it in id order. Ids are taken when a row is
-- inserted, not when its transaction commits: a smaller id can become
-- visible after a larger one.
CREATE TABLE IF NOT EXISTS invalidation_log (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  grp        VARCHAR(200)    NOT NULL,   -- group name: post/7, user/42, user/42/posts
  version    BIGINT UNSIGNED NOT NULL,   -- the group's version after the change (0 = unknown)
  created_at DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id)
) ENGINE=InnoDB;

-- The database owns the versions, so that hand-typed SQL moves them too:
--   posts.version        +1 on every UPDATE of the post (GREATEST: a
--                        statement's own "version = version + 1" stays +1);
--                        a deleted post logs its last version + 1;
--   users.posts_version  +1 for every inserted, updated or deleted post of
--                        the user, and for a post moved to or from them;
--   users.version        +1 when what GET /v1/users/{id} shows changes:
--                        name, post_count, created_at, updated_at;
--   users.post_count     kept by the posts triggers;
--   updated_at           set to the statement's time by a change that did
--                        not set it, so Last-Modified moves with the data.
-- Versions never move backwards. A posts trigger updates the user's row;
-- the users triggers then log user/{id} and user/{id}/posts.
--
-- Lock order: a change to a post locks the post's row (its statement) and
-- then its user's row (the trigger). createPost locks the user's row
-- first; its new post row is visible to no one else until it commits.
--
-- Deploying: origins built before this migration also move post_count and
-- the versions themselves. Running theirs beside these triggers counts a
-- post twice: stop them before the first origin with this migration starts.
-- The triggers run with their creator's privileges (DEFINER): keep that
-- account, or every write fails.

DELIMITER //

CREATE TRIGGER IF NOT EXISTS posts_version BEFORE UPDATE ON posts FOR EACH ROW
BEGIN
  SET NEW.version = GREATEST(NEW.version, OLD.version + 1);
  IF NEW.updated_at <=> OLD.updated_at THEN
    SET NEW.updated_at = UTC_TIMESTAMP(6);
  END IF;
END//

CREATE TRIGGER IF NOT EXISTS posts_log_insert AFTER INSERT ON posts FOR EACH ROW
BEGIN
  INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('post/', NEW.id), NEW.version);
  UPDATE users SET post_count = post_count + 1, posts_version = posts_version + 1 WHERE id = NEW.user_id;
END//

CREATE TRIGGER IF NOT EXISTS posts_log_update AFTER UPDATE ON posts FOR EACH ROW
BEGIN
  IF NEW.id <> OLD.id THEN
    INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('post/', OLD.id), OLD.version + 1);
  END IF;
  INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('post/', NEW.id), NEW.version);
  IF NEW.user_id = OLD.user_id THEN
    UPDATE users SET posts_version = posts_version + 1 WHERE id = NEW.user_id;
  ELSE
    UPDATE users SET post_count = post_count - 1, posts_version = posts_version + 1 WHERE id = OLD.user_id;
    UPDATE users SET post_count = post_count + 1, posts_version = posts_version + 1 WHERE id = NEW.user_id;
  END IF;
END//

CREATE TRIGGER IF NOT EXISTS posts_log_delete AFTER DELETE ON posts FOR EACH ROW
BEGIN
  INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('post/', OLD.id), OLD.version + 1);
  UPDATE users SET post_count = post_count - 1, posts_version = posts_version + 1 WHERE id = OLD.user_id;
END//

CREATE TRIGGER IF NOT EXISTS users_version BEFORE UPDATE ON users FOR EACH ROW
BEGIN
  IF NOT (NEW.name <=> OLD.name AND NEW.post_count <=> OLD.post_count
      AND NEW.created_at <=> OLD.created_at AND NEW.updated_at <=> OLD.updated_at) THEN
    IF NEW.updated_at <=> OLD.updated_at THEN
      SET NEW.updated_at = UTC_TIMESTAMP(6);
    END IF;
    SET NEW.version = GREATEST(NEW.version, OLD.version + 1);
  END IF;
  SET NEW.version = GREATEST(NEW.version, OLD.version);
  SET NEW.posts_version = GREATEST(NEW.posts_version, OLD.posts_version);
END//

CREATE TRIGGER IF NOT EXISTS users_log_insert AFTER INSERT ON users FOR EACH ROW
BEGIN
  INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('user/', NEW.id), NEW.version);
END//

CREATE TRIGGER IF NOT EXISTS users_log_update AFTER UPDATE ON users FOR EACH ROW
BEGIN
  IF NEW.id <> OLD.id THEN
    INSERT INTO invalidation_log (grp, version) VALUES
      (CONCAT('user/', OLD.id), OLD.version + 1), (CONCAT('user/', OLD.id, '/posts'), OLD.posts_version + 1),
      (CONCAT('user/', NEW.id), NEW.version), (CONCAT('user/', NEW.id, '/posts'), NEW.posts_version);
  ELSE
    IF NEW.version <> OLD.version THEN
      INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('user/', NEW.id), NEW.version);
    END IF;
    IF NEW.posts_version <> OLD.posts_version THEN
      INSERT INTO invalidation_log (grp, version) VALUES (CONCAT('user/', NEW.id, '/posts'), NEW.posts_version);
    END IF;
  END IF;
END//

CREATE TRIGGER IF NOT EXISTS users_log_delete AFTER DELETE ON users FOR EACH ROW
BEGIN
  INSERT INTO invalidation_log (grp, version) VALUES
    (CONCAT('user/', OLD.id), OLD.version + 1), (CONCAT('user/', OLD.id, '/posts'), OLD.posts_version + 1);
END//

DELIMITER ;
