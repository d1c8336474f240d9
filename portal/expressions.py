"""Query expressions whose SQL we choose for PostgreSQL's planner; they read the same everywhere."""

from django.db.models import BooleanField, F, Func, QuerySet, Subquery


class EqualsAny(Func):
    """`column = ANY(ARRAY(subquery))` on PostgreSQL, `column IN (subquery)` elsewhere.

    PostgreSQL runs an ARRAY subquery once, before the scan, and can then look the column up in
    its index even as one arm of an OR (a BitmapOr with the other arms' indexes); `IN (subquery)`
    inside an OR is a per-row filter, which turns a search into a scan of the whole tenant."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, column: str, queryset: QuerySet):
        super().__init__(F(column), Subquery(queryset))

    def as_sql(self, compiler, connection, **extra_context):
        column, subquery = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        subquery_sql, subquery_params = compiler.compile(subquery)  # parenthesized
        template = "%s = ANY(ARRAY%s)" if connection.vendor == "postgresql" else "%s IN %s"
        return template % (column_sql, subquery_sql), (*column_params, *subquery_params)
