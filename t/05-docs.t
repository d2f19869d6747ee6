#!/usr/bin/perl
# The documentation keeps up with the code: every directive of the table in
# src/conf/directives.rs has its `### NAME` heading in docs/directives.md, every such
# heading names a directive of the table, and every relative link in README.md and
# docs/*.md points at a file that exists. No nginx needed.

use strict;
use warnings;
use FindBin;
use File::Basename qw(dirname);
use Test::More;

my $root = "$FindBin::Bin/..";

sub slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or die "cannot read $path: $!";
    local $/;
    return scalar <$fh>;
}

# --- the directive table and docs/directives.md --------------------------------------
my @table = slurp("$root/src/conf/directives.rs") =~ /\bd\(c"([a-z0-9_]+)"/g;
cmp_ok(scalar(@table), '>=', 138, 'src/conf/directives.rs lists the directives (' . scalar(@table) . ')');
my %in_table = map { $_ => 1 } @table;

my $doc = slurp("$root/docs/directives.md");
my @headings = $doc =~ /^### (\S+)[ \t]*$/mg;
my %heading;
$heading{$_}++ for @headings;

my @missing = grep { !$heading{$_} } @table;
is("@missing", '', 'every directive of the table has a "### NAME" heading in docs/directives.md');
diag("missing in docs/directives.md: ### $_") for @missing;

my @unknown = grep { !$in_table{$_} } @headings;
is("@unknown", '', 'every "###" heading of docs/directives.md names a directive of the table');
diag("not a directive of src/conf/directives.rs: ### $_") for @unknown;

my @twice = sort grep { $heading{$_} > 1 } keys %heading;
is("@twice", '', 'no directive has two headings');

# Each entry gives its syntax, default and context.
my @incomplete;
for my $entry (split /^(?=### )/m, $doc) {
    my ($name) = $entry =~ /^### (\S+)/ or next;
    push @incomplete, $name unless $entry =~ /^Syntax: /m && $entry =~ /^Default: /m && $entry =~ /^Context: /m;
}
is("@incomplete", '', 'every directive has Syntax:, Default: and Context: lines');

# --- relative links ------------------------------------------------------------------
opendir(my $dh, "$root/docs") or die "docs/: $!";
my @pages = ('README.md', map { "docs/$_" } sort grep { /\.md$/ } readdir $dh);
closedir $dh;
ok(@pages > 1, 'README.md and docs/*.md (' . scalar(@pages) . ' pages)');

my @broken;
for my $page (@pages) {
    my $text = slurp("$root/$page");
    $text =~ s/^```.*?^```//msg;    # code blocks hold no links
    $text =~ s/`[^`\n]*`//g;        # nor does inline code
    my @targets = $text =~ /\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;
    for my $target (@targets) {
        next if $target =~ m{^[a-z][a-z0-9+.-]*:}i;    # http:, https:, mailto:
        next if $target =~ /^#/;                        # an anchor in the same page
        (my $file = $target) =~ s/#.*//;
        next if $file eq '';
        my $path = dirname("$root/$page") . "/$file";
        push @broken, "$page -> $target" unless -e $path;
    }
}
is(scalar(@broken), 0, 'every relative link in README.md and docs/*.md points at an existing file');
diag("broken link: $_") for @broken;

done_testing();
