//! Statements written for many rows at once: the bulk commands spend most of their time on the
//! driver's round trips (SQLite's worker thread, PostgreSQL's network) when they send one
//! statement per row.

/// `HEAD ($1, ..., $C), ($C+1, ...), ...`: `rows` rows of `columns` parameters each.
pub(super) fn insert_rows(head: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::from(head);
    for row in 0..rows {
        sql.push_str(if row == 0 { " (" } else { ", (" });
        sql.push_str(&parameters(row * columns + 1, columns));
        sql.push(')');
    }
    sql
}

/// `$FIRST, $FIRST+1, ...`: `count` numbered parameters, for a row or an `IN (...)` list.
pub(super) fn parameters(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_number_their_parameters_in_order() {
        assert_eq!(
            insert_rows("INSERT INTO t (a, b) VALUES", 2, 3),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6)"
        );
        assert_eq!(parameters(3, 2), "$3, $4");
        assert_eq!(parameters(1, 0), "");
    }
}
