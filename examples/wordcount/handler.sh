# Count the words of the request body.
wc -w | tr -d ' '
