"""Access: finding and reading records, always through the permission filter, always audited."""
