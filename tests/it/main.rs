//! Integration tests: the real server on a random port, driven over HTTP.
//! SQLite and in-process stores by default; PostgreSQL and Redis when
//! `CONNECT_TEST_DATABASE_URL` and `CONNECT_TEST_REDIS_URL` are set.

mod account_page;
mod accounts;
mod admin;
mod audit;
mod backchannel;
mod config_and_realms;
mod console;
mod documents;
mod dump;
mod enrol;
mod ephemeral;
mod factors_app;
mod helpers;
mod keys;
mod limits;
mod login;
mod matrix_headers;
mod matrix_markup;
mod matrix_params;
mod matrix_redirect;
mod matrix_support;
mod matrix_tokens;
mod negative;
mod notify;
mod oidc_flow;
mod oidc_security;
mod pages;
mod passkeys;
mod portal;
mod receivers;
mod recovery;
mod service;
mod staff;
mod support;
mod text;
