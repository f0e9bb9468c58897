-- Users and their posts. Each row-group the origin names in Edgecache-Groups
-- has a version column here: users.version (the user's row, post_count
-- included), users.posts_version (the user's list of posts) and
-- posts.version (one post). Every write moves them in its transaction.
CREATE TABLE IF NOT EXISTS users (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  name          VARCHAR(100)    NOT NULL,
  email         VARCHAR(254)    NOT NULL,
  token_hash    BINARY(32)      NOT NULL,
  post_count    INT UNSIGNED    NOT NULL DEFAULT 0,
  version       BIGINT UNSIGNED NOT NULL DEFAULT 1,
  posts_version BIGINT UNSIGNED NOT NULL DEFAULT 1,
  created_at    DATETIME(6)     NOT NULL,
  updated_at    DATETIME(6)     NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- posts_user_newest serves a user's posts newest first, paged by id.
CREATE TABLE IF NOT EXISTS posts (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id    BIGINT UNSIGNED NOT NULL,
  body       VARCHAR(1024)   NOT NULL,
  version    BIGINT UNSIGNED NOT NULL DEFAULT 1,
  created_at DATETIME(6)     NOT NULL,
  updated_at DATETIME(6)     NOT NULL,
  PRIMARY KEY (id),
  KEY posts_user_newest (user_id, id DESC),
  CONSTRAINT posts_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
