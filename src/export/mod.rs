//! Exports of run directories to other tools' formats.

pub mod convokit;
