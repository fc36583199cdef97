//! The turn graph: who may speak after whom, and the policy that picks the next speaker.

use petgraph::algo::has_path_connecting;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use serde::{Deserialize, Serialize};

/// How the next speaker is chosen among the current speaker's successors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TurnPolicy {
    /// Every role has exactly one successor.
    Fixed,
    /// Roles speak in the order they are declared (edges derived).
    RoundRobin,
    /// A seeded uniform draw among the successors.
    RandomNeighbour,
    /// After the moderator speaks, the moderator picks the next speaker among its successors;
    /// elsewhere as random-neighbour.
    Moderator,
}

impl TurnPolicy {
    /// Reads a policy name (case, `_` for `-` and the aliases `fixed-order`, `random-neighbor`
    /// and `random` accepted).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "fixed" | "fixed-order" => Some(Self::Fixed),
            "round-robin" => Some(Self::RoundRobin),
            "random-neighbour" | "random-neighbor" | "random" => Some(Self::RandomNeighbour),
            "moderator" => Some(Self::Moderator),
            _ => None,
        }
    }
}

/// Roles as nodes (weights are role indices), "may speak after" as edges.
#[derive(Debug, Clone)]
pub struct TurnGraph {
    graph: DiGraph<usize, ()>,
    /// How the next speaker is chosen.
    pub policy: TurnPolicy,
    /// Index of the role that speaks first.
    pub first: usize,
    /// Index of the moderating role, under [`TurnPolicy::Moderator`].
    pub moderator: Option<usize>,
}

/// Why a graph is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphProblem {
    /// A role that can never speak after the first speaker.
    Unreachable(usize),
    /// A role after which the conversation cannot get back to the first speaker.
    NoPathBack(usize),
    /// A fixed-order role with other than one successor.
    NotSingleSuccessor(usize, usize),
}

impl TurnGraph {
    /// Builds and checks the graph over `n_roles` roles.
    pub fn new(
        n_roles: usize,
        edges: &[(usize, usize)],
        policy: TurnPolicy,
        first: usize,
        moderator: Option<usize>,
    ) -> Result<Self, GraphProblem> {
        let mut graph = DiGraph::new();
        for i in 0..n_roles {
            graph.add_node(i);
        }
        for &(a, b) in edges {
            if graph.find_edge(NodeIndex::new(a), NodeIndex::new(b)).is_none() {
                graph.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
            }
        }
        let g = Self { graph, policy, first, moderator };
        g.check()?;
        Ok(g)
    }

    fn check(&self) -> Result<(), GraphProblem> {
        let first = NodeIndex::new(self.first);
        for n in self.graph.node_indices() {
            if !has_path_connecting(&self.graph, first, n, None) {
                return Err(GraphProblem::Unreachable(n.index()));
            }
            let out = self.graph.neighbors_directed(n, Direction::Outgoing).count();
            if out == 0 || !self.can_return(n) {
                return Err(GraphProblem::NoPathBack(n.index()));
            }
            if self.policy == TurnPolicy::Fixed && out != 1 {
                return Err(GraphProblem::NotSingleSuccessor(n.index(), out));
            }
        }
        Ok(())
    }

    fn can_return(&self, n: NodeIndex) -> bool {
        let first = NodeIndex::new(self.first);
        self.graph
            .neighbors_directed(n, Direction::Outgoing)
            .any(|s| s == first || has_path_connecting(&self.graph, s, first, None))
    }

    /// Who may speak after `role`, in role order.
    pub fn successors(&self, role: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(role), Direction::Outgoing)
            .map(|n| n.index())
            .collect();
        v.sort_unstable();
        v
    }

    /// Edges as role-index pairs (for the resolved configuration).
    pub fn edges(&self) -> Vec<(usize, usize)> {
        let mut v: Vec<(usize, usize)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (a.index(), b.index()))
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_party_alternation() {
        let g = TurnGraph::new(2, &[(0, 1), (1, 0)], TurnPolicy::Fixed, 0, None).unwrap();
        assert_eq!(g.successors(0), vec![1]);
    }

    #[test]
    fn dead_end_is_rejected() {
        let e =
            TurnGraph::new(3, &[(0, 1), (1, 0), (0, 2)], TurnPolicy::RandomNeighbour, 0, None).unwrap_err();
        assert_eq!(e, GraphProblem::NoPathBack(2));
    }

    #[test]
    fn unreachable_role_is_rejected() {
        let e =
            TurnGraph::new(3, &[(0, 1), (1, 0), (2, 0)], TurnPolicy::RandomNeighbour, 0, None).unwrap_err();
        assert_eq!(e, GraphProblem::Unreachable(2));
    }

    #[test]
    fn fixed_needs_one_successor() {
        let e = TurnGraph::new(3, &[(0, 1), (0, 2), (1, 0), (2, 0)], TurnPolicy::Fixed, 0, None).unwrap_err();
        assert_eq!(e, GraphProblem::NotSingleSuccessor(0, 2));
    }
}
